package bench

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/orderstore/orders/eventstore"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startStub starts a Stub and returns it with a client connected to it; both
// are closed when the test ends.
func startStub(tb testing.TB) (*Stub, *esdb.Client) {
	tb.Helper()
	s := NewStub()
	require.NoError(tb, s.Start())
	tb.Cleanup(func() { require.NoError(tb, s.Close()) })
	return s, dial(tb, s.ConnectionString())
}

func dial(tb testing.TB, url string) *esdb.Client {
	tb.Helper()
	c, err := eventstore.Connect(url)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func readAllEvents(t *testing.T, c *esdb.Client, opts esdb.ReadAllOptions, count uint64) []*esdb.ResolvedEvent {
	t.Helper()
	rs, err := c.ReadAll(t.Context(), opts, count)
	require.NoError(t, err)
	defer rs.Close()
	var out []*esdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, ev)
	}
}

func TestStubAppend(t *testing.T) {
	_, c := startStub(t)
	ctx := t.Context()
	ev := func() esdb.EventData {
		return esdb.EventData{EventType: "T", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
	}

	steps := []struct {
		name     string
		stream   string
		expected esdb.ExpectedRevision
		events   int
		wantRev  uint64
		wantPos  uint64
	}{
		{"first event of a", "a", esdb.NoStream{}, 1, 0, 1},
		{"three more to a", "a", esdb.Revision(0), 3, 3, 4},
		{"first event of b", "b", esdb.NoStream{}, 1, 0, 5},
		{"two more to b", "b", esdb.Any{}, 2, 2, 7},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			events := make([]esdb.EventData, st.events)
			for i := range events {
				events[i] = ev()
			}
			res, err := c.AppendToStream(ctx, st.stream, esdb.AppendToStreamOptions{ExpectedRevision: st.expected}, events...)
			require.NoError(t, err)
			assert.Equal(t, st.wantRev, res.NextExpectedVersion)
			assert.Equal(t, st.wantPos, res.CommitPosition)
			assert.Equal(t, st.wantPos, res.PreparePosition)
		})
	}
}

func TestStubRead(t *testing.T) {
	_, c := startStub(t)
	before := time.Now()

	tests := []struct {
		name    string
		opts    esdb.ReadAllOptions
		count   uint64
		wantPos []uint64
	}{
		{"from start", esdb.ReadAllOptions{}, 3, []uint64{1, 2, 3}},
		{"from a position, inclusive", esdb.ReadAllOptions{From: esdb.Position{Commit: 300, Prepare: 300}}, 2, []uint64{300, 301}},
		{"from end", esdb.ReadAllOptions{From: esdb.End{}}, 5, nil},
		{"backwards", esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := readAllEvents(t, c, tt.opts, tt.count)
			var got []uint64
			for _, ev := range events {
				e := ev.OriginalEvent()
				got = append(got, e.Position.Commit)
				assert.Equal(t, e.Position.Commit, e.Position.Prepare)
				assert.True(t, strings.HasPrefix(e.StreamID, streamPrefix), e.StreamID)
				assert.Equal(t, e.Position.Commit/stubPoolSize, e.EventNumber)
				assert.Equal(t, typeOrderPlaced, e.EventType)
				assert.Equal(t, "application/json", e.ContentType)
				assert.NotEqual(t, "00000000-0000-0000-0000-000000000000", e.EventID.String())
				assert.WithinDuration(t, before, e.CreatedDate, time.Minute)
				var doc map[string]any
				require.NoError(t, json.Unmarshal(e.Data, &doc))
				assert.Contains(t, doc, "orderId")
			}
			assert.Equal(t, tt.wantPos, got)
		})
	}

	t.Run("stream read is not found", func(t *testing.T) {
		rs, err := c.ReadStream(t.Context(), "order-1", esdb.ReadStreamOptions{}, 10)
		require.NoError(t, err)
		defer rs.Close()
		_, err = rs.Recv()
		var esErr *esdb.Error
		require.ErrorAs(t, err, &esErr)
		assert.Equal(t, esdb.ErrorCodeResourceNotFound, esErr.Code())
	})
}

func TestStubLifecycle(t *testing.T) {
	s := NewStub()
	assert.Empty(t, s.Addr())
	require.NoError(t, s.Start())
	assert.ErrorIs(t, s.Start(), ErrStubStarted)
	assert.True(t, strings.HasPrefix(s.Addr(), "127.0.0.1:"), s.Addr())
	assert.Equal(t, "esdb://"+s.Addr()+"?tls=false", s.ConnectionString())
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	assert.ErrorIs(t, s.Start(), ErrStubClosed)

	never := NewStub()
	require.NoError(t, never.Close())
	assert.ErrorIs(t, never.Start(), ErrStubClosed)
}

// stubEvents is the number of proposed messages the stub has consumed.
func stubEvents(s *Stub) uint64 {
	s.streams.mu.Lock()
	defer s.streams.mu.Unlock()
	return s.streams.pos
}

func TestWorkloadsOnStub(t *testing.T) {
	s, c := startStub(t)
	h := Harness{StreamsPerWriter: 4, PageSize: 100}

	tests := []struct {
		name        string
		run         func() (Result, error)
		wantName    string
		wantWriters int
		wantOps     int
		wantEvents  int
		appended    int
	}{
		{"single", func() (Result, error) { return h.AppendSingle(t.Context(), c, 30) }, "append-1", 1, 30, 30, 30},
		{"concurrent", func() (Result, error) { return h.AppendConcurrent(t.Context(), c, 8, 50) }, "append-8", 8, 50, 50, 50},
		{"batch rounds up", func() (Result, error) { return h.AppendBatch(t.Context(), c, 10, 95) }, "batch-10", 1, 10, 100, 100},
		{"read-all pages", func() (Result, error) { return h.ReadAll(t.Context(), c, 250) }, "read-all", 1, 3, 250, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := stubEvents(s)
			res, err := tt.run()
			require.NoError(t, err)
			assert.Equal(t, tt.wantName, res.Name)
			assert.Equal(t, tt.wantWriters, res.Writers)
			assert.Equal(t, tt.wantOps, res.Ops)
			assert.Equal(t, tt.wantEvents, res.Events)
			assert.Positive(t, res.Elapsed)
			assert.Positive(t, res.EventsPerSec())
			assert.Positive(t, res.Bytes)
			assert.LessOrEqual(t, res.P50, res.P99)
			assert.Positive(t, res.P99)
			assert.Equal(t, uint64(tt.appended), stubEvents(s)-before, "every proposed event reaches the stub")
		})
	}

	t.Run("payload is order-sized JSON", func(t *testing.T) {
		p := orderPayload(nil, "0b7f4d2e-8a38-4d4c-9b8e-3c1f2f9d1a55", 12345)
		assert.True(t, json.Valid(p), string(p))
		assert.GreaterOrEqual(t, len(p), 200)
		assert.LessOrEqual(t, len(p), 300)
	})

	t.Run("max duration ends a workload early", func(t *testing.T) {
		const n = 1 << 40
		hd := h
		hd.MaxDuration = 50 * time.Millisecond
		for name, run := range map[string]func() (Result, error){
			"append": func() (Result, error) { return hd.AppendConcurrent(t.Context(), c, 4, n) },
			"read":   func() (Result, error) { return hd.ReadAll(t.Context(), c, n) },
		} {
			res, err := run()
			require.NoError(t, err, name)
			assert.Positive(t, res.Events, name)
			assert.Less(t, res.Events, n, name)
			assert.GreaterOrEqual(t, res.Elapsed, hd.MaxDuration, name)
		}
	})

	t.Run("invalid sizes", func(t *testing.T) {
		_, err := h.AppendSingle(t.Context(), c, 0)
		assert.ErrorIs(t, err, ErrInvalidArgument)
		_, err = h.AppendConcurrent(t.Context(), c, 0, 10)
		assert.ErrorIs(t, err, ErrInvalidArgument)
		_, err = h.AppendBatch(t.Context(), c, 0, 10)
		assert.ErrorIs(t, err, ErrInvalidArgument)
		_, err = h.ReadAll(t.Context(), c, 0)
		assert.ErrorIs(t, err, ErrInvalidArgument)
	})
}

func TestReadPageSkipsTheStartEvent(t *testing.T) {
	_, c := startStub(t)
	from := esdb.Position{Commit: 10, Prepare: 10}

	got, bytes, last, err := readPage(t.Context(), c, from, &from, 4)
	require.NoError(t, err)
	assert.Equal(t, 3, got)
	assert.Positive(t, bytes)
	assert.Equal(t, esdb.Position{Commit: 13, Prepare: 13}, last)

	got, _, last, err = readPage(t.Context(), c, from, nil, 4)
	require.NoError(t, err)
	assert.Equal(t, 4, got)
	assert.Equal(t, esdb.Position{Commit: 13, Prepare: 13}, last)
}

func TestWriteMarkdown(t *testing.T) {
	rows := []Row{
		{Workload: "append-1",
			Node: Result{Events: 1000, Elapsed: time.Second, P50: 900 * time.Microsecond, P99: 2 * time.Millisecond},
			Stub: Result{Events: 4000, Elapsed: time.Second, P50: 200 * time.Microsecond, P99: 400 * time.Microsecond}},
		{Workload: "read-all",
			Node: Result{Events: 1_234_567, Elapsed: time.Second},
			Stub: Result{}},
	}
	var b strings.Builder
	require.NoError(t, WriteMarkdown(&b, rows))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 4)
	assert.Equal(t, "| append-1 | 1,000 | 4,000 | 0.25 | 900µs / 2ms | 200µs / 400µs |", lines[2])
	assert.Equal(t, "| read-all | 1,234,567 | 0 | 0.00 | 0s / 0s | 0s / 0s |", lines[3])
}

func TestMedian(t *testing.T) {
	r := func(events int) Result { return Result{Name: "w", Events: events, Elapsed: time.Second} }
	tests := []struct {
		name string
		in   []Result
		want int
	}{
		{"one", []Result{r(5)}, 5},
		{"odd", []Result{r(9), r(1), r(5)}, 5},
		{"even takes the lower middle", []Result{r(4), r(1), r(3), r(2)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, median(tt.in).Events)
		})
	}
}
