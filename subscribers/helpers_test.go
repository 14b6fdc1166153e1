package subscribers_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/internal/testutil/runtest"
	"github.com/orderstore/orders/subscribers"
)

// fast are test settings: short backoffs so retries and reconnects happen in milliseconds.
func fast(g subscribers.Group) subscribers.Config {
	return subscribers.Config{
		Group:       g,
		MaxAttempts: 3,
		Backoff:     func(int) time.Duration { return 10 * time.Millisecond },
		Reconnect:   func(int) time.Duration { return 50 * time.Millisecond },
	}
}

func dialNode(srv *esdbnode.Server) subscribers.Dial {
	return subscribers.DialString(srv.ConnectionString())
}

// appendN appends n small JSON events of type typ to stream and returns their ids.
func appendN(t *testing.T, client *esdb.Client, stream, typ string, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	evs := make([]esdb.EventData, n)
	for i := range evs {
		ids[i] = uuid.New()
		data, _ := json.Marshal(map[string]int{"n": i})
		evs[i] = esdb.EventData{EventID: ids[i], EventType: typ, ContentType: esdb.ContentTypeJson, Data: data}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, evs...); err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return ids
}

// recorder records handler calls and wakes waiters on every change.
type recorder struct {
	mu      sync.Mutex
	calls   []subscribers.Event // every event handed to the handler, in order
	ok      map[uuid.UUID]int   // successful handles per event id
	events  map[uuid.UUID]subscribers.Event
	batches []int // sizes of the calls
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{ok: map[uuid.UUID]int{}, events: map[uuid.UUID]subscribers.Event{}, changed: make(chan struct{})}
}

func (r *recorder) record(evs []subscribers.Event, success bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, evs...)
	r.batches = append(r.batches, len(evs))
	if success {
		for _, ev := range evs {
			r.ok[ev.ID]++
			r.events[ev.ID] = ev
		}
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// wait blocks until cond (called with r locked) holds, failing the test after timeout.
func (r *recorder) wait(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		done := cond()
		ch := r.changed
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// allHandled reports (with r locked) whether every id was handled successfully at least once.
func (r *recorder) allHandled(ids []uuid.UUID) bool {
	for _, id := range ids {
		if r.ok[id] == 0 {
			return false
		}
	}
	return true
}

func (r *recorder) snapshot() (calls []subscribers.Event, ok map[uuid.UUID]int, batches []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok = make(map[uuid.UUID]int, len(r.ok))
	for k, v := range r.ok {
		ok[k] = v
	}
	return append([]subscribers.Event(nil), r.calls...), ok, append([]int(nil), r.batches...)
}

// eventually polls cond every 10 ms until it holds, for conditions with no event to wait on
// (the server's parked stream, Stats).
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// run starts c.Run and returns a stop function that cancels it and checks that it returned
// nil within a few seconds; stop is also registered as a cleanup.
func run(t *testing.T, c *subscribers.Consumer) (stop func()) {
	t.Helper()
	return runtest.Start(t, c.Run, 10*time.Second)
}

func newClient(t *testing.T, connString string) *esdb.Client {
	t.Helper()
	client, err := subscribers.DialString(connString)()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// proxy is a TCP proxy on 127.0.0.1:0 forwarding to a target, which can sever every
// connection it carries, like a network cut.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		p.sever()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = down.Close()
			continue
		}
		p.mu.Lock()
		p.conns[down] = struct{}{}
		p.conns[up] = struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Go(func() { pipe(up, down) })
		p.wg.Go(func() { pipe(down, up) })
	}
}

// sever closes every open connection and returns how many there were.
func (p *proxy) sever() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		_ = c.Close()
	}
	return n
}

// parkedReasons reads a parked stream: the Reason of each parked link's metadata.
func parkedReasons(t *testing.T, client *esdb.Client, stream string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rs, err := client.ReadStream(ctx, stream, esdb.ReadStreamOptions{From: esdb.Start{}}, 1000)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	defer rs.Close()
	var reasons []string
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return reasons
		}
		var esErr *esdb.Error
		if errors.As(err, &esErr) && esErr.Code() == esdb.ErrorCodeResourceNotFound {
			return nil
		}
		if err != nil {
			t.Fatalf("read %s: %v", stream, err)
		}
		var md struct{ Reason string }
		if err := json.Unmarshal(ev.OriginalEvent().UserMetadata, &md); err != nil {
			t.Fatalf("parked link metadata %q: %v", ev.OriginalEvent().UserMetadata, err)
		}
		reasons = append(reasons, md.Reason)
	}
}
