package crashtest

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/eventstore/esdbnode"
)

var (
	flagCycles = flag.Int("crash.cycles", 20, "kill -9 / restart cycles")
	flagSeed   = flag.Uint64("crash.seed", 0, "random seed (0: from the clock)")
)

// Environment of the child process.
const (
	envChild = "CRASHTEST_CHILD"
	envDir   = "CRASHTEST_DIR"
	envAddr  = "CRASHTEST_ADDR"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild is the node process: start, announce, block until killed or
// until stdin closes.
func runChild() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := esdbnode.New(esdbnode.Config{Addr: os.Getenv(envAddr), DataDir: os.Getenv(envDir), Logger: log})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashtest child:", err)
		return 1
	}
	fmt.Printf("READY %s\n", srv.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = srv.Close()
	return 0
}

// node is a child process running the node.
type node struct {
	cmd    *exec.Cmd
	addr   string
	stdin  io.WriteCloser
	stderr *esdbnodetest.Buffer
	done   chan struct{} // closed when the process has been waited for
}

// startNode runs the node on dir and waits for READY.
func startNode(t *testing.T, dir string) *node {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envDir+"="+dir, envAddr+"=127.0.0.1:0")
	n := &node{cmd: cmd, stderr: &esdbnodetest.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = n.stderr
	n.stdin, err = cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { n.kill(t) })

	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- addr
			}
		}
		close(ready)
		_ = cmd.Wait()
		close(n.done)
	}()
	select {
	case addr, ok := <-ready:
		require.True(t, ok, "node exited before READY; stderr:\n%s", n.stderr)
		n.addr = addr
	case <-time.After(60 * time.Second):
		t.Fatalf("node not READY within 60 s; stderr:\n%s", n.stderr)
	}
	return n
}

// kill sends SIGKILL and waits for the process to be gone; idempotent.
func (n *node) kill(t *testing.T) {
	t.Helper()
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Kill() // SIGKILL on Unix
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		t.Errorf("killed node %d did not exit", n.cmd.Process.Pid)
	}
	_ = n.stdin.Close()
}

// client connects the official client to the node.
func (n *node) client(t *testing.T) *esdb.Client {
	t.Helper()
	c, err := esdbnodetest.NewClient("esdb://" + n.addr + "?tls=false")
	require.NoError(t, err)
	return c
}

// attempt is one append as the writer issued it.
type attempt struct {
	cycle  int
	stream string
	ids    []uuid.UUID
	data   [][]byte
	acked  bool
	rev    uint64 // acked: revision of the last event
	pos    uint64 // acked: position of the last event
	errMsg string // not acked: why
}

// model is everything the writers did, per stream in issue order.
type model struct {
	mu      sync.Mutex
	streams map[string][]*attempt
	floors  map[int]uint64       // cycle → head of $all when the cycle started
	inAll   map[uuid.UUID]uint64 // $all position of every crash-* event seen
}

func (m *model) add(a *attempt) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.streams[a.stream] = append(m.streams[a.stream], a)
}

// TestKill9 appends through the official client while the node is killed at
// a random moment, then restarts it and checks the contract in the package
// doc, for -crash.cycles cycles.
func TestKill9(t *testing.T) {
	seed := *flagSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -crash.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x6b696c6c))
	const writers, streamsPerWriter = 4, 3

	dir := t.TempDir()
	m := &model{streams: map[string][]*attempt{}, floors: map[int]uint64{}, inAll: map[uuid.UUID]uint64{}}
	n := startNode(t, dir)
	next := map[string]esdb.ExpectedRevision{} // revision expectation per stream, learned from reads
	m.floors[0] = 0

	totalAcked, totalUnknown, totalCommittedUnknown := 0, 0, 0
	for cycle := range *flagCycles {
		delay := time.Duration(20+rng.IntN(330)) * time.Millisecond
		var (
			killed atomic.Bool
			wg     sync.WaitGroup
			errs   = make(chan error, writers)
		)
		// One client per writer: after a failed rediscovery the client's
		// connection goroutine exits, and a concurrent caller of the same
		// client blocks forever (EventStore-Client-Go v4.2.0 impl.go:84-98,
		// 210-225), so no client is shared across the kill.
		clients := make([]*esdb.Client, writers)
		for w := range writers {
			clients[w] = n.client(t)
		}
		for w := range writers {
			wseed, c := rng.Uint64(), clients[w]
			wg.Go(func() {
				if err := write(c, m, next, cycle, w, streamsPerWriter, wseed, &killed); err != nil {
					errs <- err
				}
			})
		}
		select {
		case <-time.After(delay):
		case err := <-errs:
			t.Fatalf("cycle %d: writer failed before the kill: %v\nnode stderr:\n%s", cycle, err, n.stderr)
		}
		killed.Store(true)
		t0 := time.Now()
		n.kill(t)
		t1 := time.Now()
		wg.Wait()
		t2 := time.Now()
		close(errs)
		for err := range errs {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		for _, c := range clients {
			_ = c.Close()
		}

		n = startNode(t, dir)
		t3 := time.Now()
		c := n.client(t)
		acked, unknown, committed := verify(t, c, m, next, cycle)
		totalAcked += acked
		totalUnknown += unknown
		totalCommittedUnknown += committed
		t.Logf("cycle %d: killed after %v; %d appends acknowledged, %d in flight (%d of them committed); kill %v, writers stop %v, restart %v, verify %v",
			cycle, delay, acked, unknown, committed, t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), t3.Sub(t2).Round(time.Millisecond), time.Since(t3).Round(time.Millisecond))
		m.floors[cycle+1] = headOf(t, c)
		_ = c.Close()
		if t.Failed() {
			t.Fatalf("seed %d, cycle %d failed; node stderr:\n%s", seed, cycle, n.stderr)
		}
	}
	t.Logf("%d cycles: %d acknowledged appends, %d unknown outcomes (%d committed)", *flagCycles, totalAcked, totalUnknown, totalCommittedUnknown)
	require.Positive(t, totalAcked, "the writers must get appends acknowledged for the test to mean anything")
}

// write is one writer for one cycle: multi-event appends with revision
// expectations to its own streams until the first error (the kill).
func write(c *esdb.Client, m *model, next map[string]esdb.ExpectedRevision, cycle, w, nStreams int, seed uint64, killed *atomic.Bool) error {
	rng := rand.New(rand.NewPCG(seed, uint64(w)))
	// Each writer owns its streams, so next[...] entries are only touched by
	// their writer while writers run (the map itself is pre-filled below).
	for i := 0; ; i++ {
		s := fmt.Sprintf("crash-w%d-s%d", w, rng.IntN(nStreams))
		exp := expectation(m, next, s)
		a := &attempt{cycle: cycle, stream: s}
		evs := make([]esdb.EventData, 1+rng.IntN(4))
		for j := range evs {
			id := uuid.New()
			data := fmt.Appendf(nil, `{"w":%d,"c":%d,"i":%d,"j":%d,"pad":%q}`, w, cycle, i, j, strings.Repeat("x", rng.IntN(600)))
			evs[j] = esdb.EventData{EventID: id, EventType: "Crash", ContentType: esdb.ContentTypeJson, Data: data}
			a.ids = append(a.ids, id)
			a.data = append(a.data, data)
		}
		m.add(a)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := c.AppendToStream(ctx, s, esdb.AppendToStreamOptions{ExpectedRevision: exp}, evs...)
		cancel()
		if err != nil {
			a.errMsg = err.Error()
			var e *esdb.Error
			if errors.As(err, &e) && e.Code() == esdb.ErrorCodeWrongExpectedVersion {
				return fmt.Errorf("writer %d: wrong expected version on its own stream %s (expected %v): %w", w, s, exp, err)
			}
			if !killed.Load() {
				return fmt.Errorf("writer %d: append to %s failed before the kill: %w", w, s, err)
			}
			return nil
		}
		m.mu.Lock()
		a.acked, a.rev, a.pos = true, res.NextExpectedVersion, res.CommitPosition
		next[s] = esdb.Revision(res.NextExpectedVersion)
		m.mu.Unlock()
	}
}

// expectation returns the expected revision for the next append to s.
func expectation(m *model, next map[string]esdb.ExpectedRevision, s string) esdb.ExpectedRevision {
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := next[s]; ok {
		return exp
	}
	return esdb.NoStream{}
}

// verify checks the restarted node against the model and relearns each
// stream's revision. It returns this cycle's acknowledged and in-flight
// attempts and how many of the in-flight ones were committed.
func verify(t *testing.T, c *esdb.Client, m *model, next map[string]esdb.ExpectedRevision, cycle int) (acked, unknown, committed int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()

	// $all since this cycle began: positions strictly increasing; remember
	// each event's position (earlier cycles' events were recorded before).
	inAll := m.inAll
	var last uint64
	for _, e := range readAll(t, c, m.floors[cycle]) {
		p := e.OriginalEvent().Position
		require.Equal(t, p.Commit, p.Prepare)
		require.Greater(t, p.Commit, last, "$all positions strictly increase")
		last = p.Commit
		if strings.HasPrefix(e.OriginalEvent().StreamID, "crash-") {
			inAll[e.OriginalEvent().EventID] = p.Commit
		}
	}

	for s, attempts := range m.streams {
		evs := readStream(t, c, s)
		for i, e := range evs {
			require.Equal(t, uint64(i), e.OriginalEvent().EventNumber, "%s is dense", s)
		}
		idx := 0
		for _, a := range attempts {
			if a.cycle == cycle {
				if a.acked {
					acked++
				} else {
					unknown++
				}
			}
			present := idx < len(evs) && evs[idx].OriginalEvent().EventID == a.ids[0]
			if !present {
				require.False(t, a.acked, "acknowledged append to %s at revision %d (position %d) is missing", s, a.rev, a.pos)
				for _, e := range evs {
					require.NotContains(t, a.ids, e.OriginalEvent().EventID, "part of an unacknowledged append to %s is present out of place", s)
				}
				continue
			}
			require.LessOrEqual(t, idx+len(a.ids), len(evs), "append to %s is half-written", s)
			for j, id := range a.ids {
				ev := evs[idx+j].OriginalEvent()
				require.Equal(t, id, ev.EventID, "append to %s is not all-or-nothing/consecutive", s)
				require.Equal(t, a.data[j], ev.Data, "data of %s@%d", s, ev.EventNumber)
				pos, ok := inAll[id]
				require.True(t, ok, "%s@%d missing from $all", s, ev.EventNumber)
				require.Equal(t, pos, ev.Position.Commit, "%s@%d position in $all", s, ev.EventNumber)
				require.Greater(t, ev.Position.Commit, m.floors[a.cycle], "%s@%d was written after a restart, beyond the earlier head", s, ev.EventNumber)
			}
			lastEv := evs[idx+len(a.ids)-1].OriginalEvent()
			if a.acked {
				require.Equal(t, a.rev, lastEv.EventNumber, "acknowledged revision of %s", s)
				require.Equal(t, a.pos, lastEv.Position.Commit, "acknowledged position of %s@%d", s, a.rev)
			} else if a.cycle == cycle {
				committed++
			}
			idx += len(a.ids)
		}
		require.Equal(t, len(evs), idx, "%s holds events of no known append", s)
		if len(evs) > 0 {
			next[s] = esdb.Revision(uint64(len(evs) - 1))
		} else {
			delete(next, s)
		}
	}
	return acked, unknown, committed
}

// readAll reads $all forwards from a position (inclusive).
func readAll(t *testing.T, c *esdb.Client, from uint64) []*esdb.ResolvedEvent {
	t.Helper()
	rs, err := c.ReadAll(t.Context(), esdb.ReadAllOptions{From: esdb.Position{Commit: from, Prepare: from}}, 1<<40)
	require.NoError(t, err)
	evs, err := drain(rs)
	require.NoError(t, err)
	return evs
}

// readStream reads a whole stream; an absent stream is empty.
func readStream(t *testing.T, c *esdb.Client, s string) []*esdb.ResolvedEvent {
	t.Helper()
	rs, err := c.ReadStream(t.Context(), s, esdb.ReadStreamOptions{From: esdb.Start{}}, 1<<40)
	require.NoError(t, err)
	evs, err := drain(rs)
	var e *esdb.Error
	if errors.As(err, &e) && e.Code() == esdb.ErrorCodeResourceNotFound {
		return nil
	}
	require.NoError(t, err, "read %s", s)
	return evs
}

func drain(rs *esdb.ReadStream) ([]*esdb.ResolvedEvent, error) {
	defer rs.Close()
	var out []*esdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

// headOf is the position of the newest event in $all.
func headOf(t *testing.T, c *esdb.Client) uint64 {
	t.Helper()
	rs, err := c.ReadAll(t.Context(), esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	require.NoError(t, err)
	evs, err := drain(rs)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	return evs[0].OriginalEvent().Position.Commit
}
