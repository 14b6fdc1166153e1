package psub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

const waitFor = 10 * time.Second

var nameSeq atomic.Int64

// uniq returns a fresh name with prefix.
func uniq(prefix string) string {
	return fmt.Sprintf("%s-%d-%s", prefix, nameSeq.Add(1), uuid.NewString()[:8])
}

func startNode(t *testing.T) (*esdbnode.Server, *esdb.Client) {
	t.Helper()
	srv := esdbnodetest.Start(t)
	return srv, esdbnodetest.Client(t, srv)
}

// startNodeAt runs a node on dir; the caller may close it (also closed at cleanup).
func startNodeAt(t *testing.T, dir string) (*esdbnode.Server, *esdb.Client) {
	t.Helper()
	srv := esdbnodetest.StartAt(t, "127.0.0.1:0", dir)
	return srv, esdbnodetest.Client(t, srv)
}

type payload struct {
	N int `json:"n"`
}

// appendN appends n JSON events numbered from first and returns their ids.
func appendN(t testing.TB, c *esdb.Client, stream string, first, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	evs := make([]esdb.EventData, n)
	for i := range n {
		ids[i] = uuid.New()
		data, _ := json.Marshal(payload{N: first + i})
		evs[i] = esdb.EventData{EventID: ids[i], EventType: "TestEvent", ContentType: esdb.ContentTypeJson, Data: data}
	}
	if _, err := c.AppendToStream(context.Background(), stream, esdb.AppendToStreamOptions{}, evs...); err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return ids
}

// consumer receives a persistent subscription's events on a channel.
type consumer struct {
	ps      *esdb.PersistentSubscription
	events  chan *esdb.EventAppeared
	dropped chan error
}

func subscribe(t testing.TB, c *esdb.Client, stream, group string, buf uint32) *consumer {
	t.Helper()
	sub, err := subscribeErr(c, stream, group, buf)
	if err != nil {
		t.Fatalf("subscribe %s::%s: %v", stream, group, err)
	}
	t.Cleanup(func() { _ = sub.ps.Close() })
	return sub
}

func subscribeErr(c *esdb.Client, stream, group string, buf uint32) (*consumer, error) {
	opts := esdb.SubscribeToPersistentSubscriptionOptions{BufferSize: buf}
	var ps *esdb.PersistentSubscription
	var err error
	if stream == "$all" {
		ps, err = c.SubscribeToPersistentSubscriptionToAll(context.Background(), group, opts)
	} else {
		ps, err = c.SubscribeToPersistentSubscription(context.Background(), stream, group, opts)
	}
	if err != nil {
		return nil, err
	}
	s := &consumer{ps: ps, events: make(chan *esdb.EventAppeared, 10000), dropped: make(chan error, 1)}
	go func() {
		for {
			ev := ps.Recv()
			if ev.SubscriptionDropped != nil {
				s.dropped <- ev.SubscriptionDropped.Error
				return
			}
			if ev.EventAppeared != nil {
				s.events <- ev.EventAppeared
			}
		}
	}()
	return s, nil
}

func (s *consumer) next(t testing.TB) *esdb.EventAppeared {
	t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case err := <-s.dropped:
		t.Fatalf("subscription dropped: %v", err)
	case <-time.After(waitFor):
		t.Fatalf("no event within %v", waitFor)
	}
	return nil
}

func (s *consumer) ack(t testing.TB, evs ...*esdb.EventAppeared) {
	t.Helper()
	for _, ev := range evs {
		if err := s.ps.Ack(ev.Event); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
}

func (s *consumer) nack(t testing.TB, action esdb.NackAction, reason string, ev *esdb.EventAppeared) {
	t.Helper()
	if err := s.ps.Nack(reason, action, ev.Event); err != nil {
		t.Fatalf("nack: %v", err)
	}
}

// waitDropped waits for the server to drop the subscription.
func (s *consumer) waitDropped(t testing.TB) error {
	t.Helper()
	for {
		select {
		case <-s.events:
		case err := <-s.dropped:
			return err
		case <-time.After(waitFor):
			t.Fatalf("subscription not dropped within %v", waitFor)
			return nil
		}
	}
}

func payloadN(t testing.TB, ev *esdb.EventAppeared) int {
	t.Helper()
	var p payload
	if err := json.Unmarshal(ev.Event.Event.Data, &p); err != nil {
		t.Fatalf("payload: %v", err)
	}
	return p.N
}

// eventually polls cond until it holds or the deadline passes (for figures
// with no event to wait on).
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %v (last: %s)", what, waitFor, last)
}

func info(t testing.TB, c *esdb.Client, stream, group string) *esdb.PersistentSubscriptionInfo {
	t.Helper()
	var i *esdb.PersistentSubscriptionInfo
	var err error
	if stream == "$all" {
		i, err = c.GetPersistentSubscriptionInfoToAll(context.Background(), group, esdb.GetPersistentSubscriptionOptions{})
	} else {
		i, err = c.GetPersistentSubscriptionInfo(context.Background(), stream, group, esdb.GetPersistentSubscriptionOptions{})
	}
	if err != nil {
		t.Fatalf("get info %s::%s: %v", stream, group, err)
	}
	return i
}

// readStream reads a whole stream forwards (nil if it does not exist).
func readStream(t testing.TB, c *esdb.Client, stream string) []*esdb.ResolvedEvent {
	t.Helper()
	rs, err := c.ReadStream(context.Background(), stream, esdb.ReadStreamOptions{}, 1<<20)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	defer rs.Close()
	var out []*esdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if esErr, ok := esdb.FromError(err); !ok && esErr.Code() == esdb.ErrorCodeResourceNotFound {
			return nil
		}
		if err != nil {
			t.Fatalf("read %s: %v", stream, err)
		}
		out = append(out, ev)
	}
}

func errCode(err error) esdb.ErrorCode {
	if err == nil {
		return -1
	}
	e, _ := esdb.FromError(err)
	if e == nil {
		return -1
	}
	return e.Code()
}

func settings(mod func(*esdb.PersistentSubscriptionSettings)) *esdb.PersistentSubscriptionSettings {
	s := esdb.SubscriptionSettingsDefault()
	if mod != nil {
		mod(&s)
	}
	return &s
}

func createStream(t testing.TB, c *esdb.Client, stream, group string, from esdb.StreamPosition, mod func(*esdb.PersistentSubscriptionSettings)) {
	t.Helper()
	err := c.CreatePersistentSubscription(context.Background(), stream, group, esdb.PersistentStreamSubscriptionOptions{
		StartFrom: from, Settings: settings(mod),
	})
	if err != nil {
		t.Fatalf("create %s::%s: %v", stream, group, err)
	}
}

func startNodeB(b *testing.B) (*esdbnode.Server, *esdb.Client) {
	b.Helper()
	srv := esdbnodetest.Start(b)
	return srv, esdbnodetest.Client(b, srv)
}
