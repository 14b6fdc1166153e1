package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// streamPrefix starts the name of every stream the workloads write.
const streamPrefix = "bench-"

// Event types of the order-like events, by stream revision.
const (
	typeOrderPlaced    = "OrderPlaced"
	typeOrderLineAdded = "OrderLineAdded"
	typeOrderPaid      = "OrderPaid"
	typeOrderShipped   = "OrderShipped"
)

// Harness defaults.
const (
	DefaultStreamsPerWriter = 64
	DefaultPageSize         = 1000
	preloadWriters          = 4
	preloadBatch            = 100
)

// Harness runs workloads against one client. The zero value is ready to use.
type Harness struct {
	// StreamsPerWriter is how many "bench-<uuid>" streams each writer cycles
	// through (default DefaultStreamsPerWriter).
	StreamsPerWriter int
	// PageSize is the count of each ReadAll call (default DefaultPageSize).
	PageSize int
	// MaxDuration, if positive, ends a workload early once it has run that
	// long; the Result then holds what was done so far.
	MaxDuration time.Duration
}

func (h Harness) withDefaults() Harness {
	if h.StreamsPerWriter <= 0 {
		h.StreamsPerWriter = DefaultStreamsPerWriter
	}
	if h.PageSize <= 0 {
		h.PageSize = DefaultPageSize
	}
	return h
}

// Result is what one workload did.
type Result struct {
	Name    string        // workload name, e.g. "append-16"
	Writers int           // concurrent callers
	Ops     int           // client calls: appends, or pages read
	Events  int           // events appended or read
	Bytes   int64         // event payload bytes appended or read
	Elapsed time.Duration // wall time of the timed part
	P50     time.Duration // median latency of one call
	P99     time.Duration // 99th percentile latency of one call
}

// EventsPerSec is Events over Elapsed (0 when nothing was timed).
func (r Result) EventsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Events) / r.Elapsed.Seconds()
}

// OpsPerSec is Ops over Elapsed (0 when nothing was timed).
func (r Result) OpsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

func (r Result) String() string {
	return fmt.Sprintf("%s: %d events in %d calls by %d in %v: %.0f events/s, %.0f calls/s, p50 %v, p99 %v",
		r.Name, r.Events, r.Ops, r.Writers, r.Elapsed.Round(time.Millisecond),
		r.EventsPerSec(), r.OpsPerSec(), r.P50, r.P99)
}

// WarmUp makes c connect (discovery, server features) by appending one event
// to "bench-warmup", so that no workload times the connection.
func WarmUp(ctx context.Context, c *esdb.Client) error {
	_, err := c.AppendToStream(ctx, streamPrefix+"warmup", esdb.AppendToStreamOptions{},
		esdb.EventData{EventType: typeOrderPlaced, ContentType: esdb.ContentTypeJson, Data: []byte("{}")})
	if err != nil {
		return fmt.Errorf("bench: warm up: %w", err)
	}
	return nil
}

// AppendSingle runs Harness{}.AppendSingle.
func AppendSingle(ctx context.Context, c *esdb.Client, n int) (Result, error) {
	return Harness{}.AppendSingle(ctx, c, n)
}

// AppendConcurrent runs Harness{}.AppendConcurrent.
func AppendConcurrent(ctx context.Context, c *esdb.Client, writers, n int) (Result, error) {
	return Harness{}.AppendConcurrent(ctx, c, writers, n)
}

// AppendBatch runs Harness{}.AppendBatch.
func AppendBatch(ctx context.Context, c *esdb.Client, batch, n int) (Result, error) {
	return Harness{}.AppendBatch(ctx, c, batch, n)
}

// ReadAll runs Harness{}.ReadAll.
func ReadAll(ctx context.Context, c *esdb.Client, n int) (Result, error) {
	return Harness{}.ReadAll(ctx, c, n)
}

// Preload runs Harness{}.Preload.
func Preload(ctx context.Context, c *esdb.Client, n int) error {
	return Harness{}.Preload(ctx, c, n)
}

// AppendSingle appends n events, one per append, from one writer: the
// latency-bound case (one durable commit per round trip).
func (h Harness) AppendSingle(ctx context.Context, c *esdb.Client, n int) (Result, error) {
	return h.appendWorkload(ctx, c, "append-1", 1, 1, n)
}

// AppendConcurrent appends n events, one per append, from `writers`
// concurrent writers sharing the client: what group commit is for.
func (h Harness) AppendConcurrent(ctx context.Context, c *esdb.Client, writers, n int) (Result, error) {
	return h.appendWorkload(ctx, c, fmt.Sprintf("append-%d", writers), writers, 1, n)
}

// AppendBatch appends n events (rounded up to a multiple of batch), batch
// events per append, from one writer.
func (h Harness) AppendBatch(ctx context.Context, c *esdb.Client, batch, n int) (Result, error) {
	return h.appendWorkload(ctx, c, fmt.Sprintf("batch-%d", batch), 1, batch, n)
}

// Preload appends n events (rounded up to a multiple of 100) in batches of
// 100 from a few writers, so that ReadAll has a log to read. It is meant to
// run untimed before ReadAll.
func (h Harness) Preload(ctx context.Context, c *esdb.Client, n int) error {
	h.MaxDuration = 0
	_, err := h.appendWorkload(ctx, c, "preload", preloadWriters, preloadBatch, n)
	return err
}

func (h Harness) appendWorkload(ctx context.Context, c *esdb.Client, name string, writers, batch, n int) (Result, error) {
	if n < 1 || writers < 1 || batch < 1 {
		return Result{}, fmt.Errorf("%w: %s with n=%d writers=%d batch=%d", ErrInvalidArgument, name, n, writers, batch)
	}
	h = h.withDefaults()
	ws := make([]*writer, writers)
	for i := range ws {
		ws[i] = newWriter(h.StreamsPerWriter, batch)
	}
	res, err := driveWriters(ctx, name, ws, batch, n, h.MaxDuration, func(ctx context.Context, i int) error {
		return ws[i].append(ctx, c)
	})
	if err != nil {
		return Result{}, fmt.Errorf("bench: %s: %w", name, err)
	}
	return res, nil
}

// driveWriters makes n events (rounded up to a multiple of batch) from
// len(ws) concurrent writers: writer i calls appendOnce(ctx, i) for each
// append it claims, until all are claimed or maxDuration (0: no limit) has
// passed, and each call is timed. The result sums the writers' figures.
func driveWriters(ctx context.Context, name string, ws []*writer, batch, n int, maxDuration time.Duration, appendOnce func(ctx context.Context, i int) error) (Result, error) {
	ops := int64((n + batch - 1) / batch)
	var claimed atomic.Int64
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for i, w := range ws {
		g.Go(func() error {
			for claimed.Add(1) <= ops {
				if maxDuration > 0 && time.Since(start) >= maxDuration {
					return nil
				}
				t0 := time.Now()
				if err := appendOnce(gctx, i); err != nil {
					return err
				}
				w.latencies = append(w.latencies, time.Since(t0))
			}
			return nil
		})
	}
	err := g.Wait()
	elapsed := time.Since(start)
	if err != nil {
		return Result{}, err
	}
	res := Result{Name: name, Writers: len(ws), Elapsed: elapsed}
	var lat []time.Duration
	for _, w := range ws {
		lat = append(lat, w.latencies...)
		res.Bytes += w.bytes
	}
	res.Ops = len(lat)
	res.Events = res.Ops * batch
	res.P50, res.P99 = percentiles(lat)
	return res, nil
}

// writer appends to its own streams in turn, tracking each stream's revision
// for the expected-revision check like an application would.
type writer struct {
	streams   []string
	orderIDs  []string
	revs      []int64 // last revision per stream, -1 before the first append
	next      int
	batch     int
	bytes     int64
	latencies []time.Duration
}

func newWriter(streams, batch int) *writer {
	w := &writer{
		streams:  make([]string, streams),
		orderIDs: make([]string, streams),
		revs:     make([]int64, streams),
		batch:    batch,
	}
	for i := range w.streams {
		id := uuid.NewString()
		w.orderIDs[i] = id
		w.streams[i] = streamPrefix + id
		w.revs[i] = -1
	}
	return w
}

func (w *writer) append(ctx context.Context, c *esdb.Client) error {
	i := w.next % len(w.streams)
	w.next++
	var expected esdb.ExpectedRevision = esdb.NoStream{}
	if w.revs[i] >= 0 {
		expected = esdb.Revision(uint64(w.revs[i]))
	}
	events := make([]esdb.EventData, w.batch)
	for j := range events {
		rev := w.revs[i] + 1 + int64(j)
		data := orderPayload(nil, w.orderIDs[i], rev)
		w.bytes += int64(len(data))
		events[j] = esdb.EventData{
			EventID:     uuid.New(),
			EventType:   eventType(rev),
			ContentType: esdb.ContentTypeJson,
			Data:        data,
		}
	}
	res, err := c.AppendToStream(ctx, w.streams[i], esdb.AppendToStreamOptions{ExpectedRevision: expected}, events...)
	if err != nil {
		return fmt.Errorf("append to %s (expected %v): %w", w.streams[i], expected, err)
	}
	// NextExpectedVersion is the revision of the last event written.
	w.revs[i] = int64(res.NextExpectedVersion)
	return nil
}

// ReadAll reads n events of $all forwards in pages of PageSize, from Start,
// continuing from the last position seen and starting over at Start when it
// reaches the end of the log.
func (h Harness) ReadAll(ctx context.Context, c *esdb.Client, n int) (Result, error) {
	if n < 1 {
		return Result{}, fmt.Errorf("%w: read-all with n=%d", ErrInvalidArgument, n)
	}
	h = h.withDefaults()
	res := Result{Name: "read-all", Writers: 1}
	var (
		from esdb.AllPosition = esdb.Start{}
		last *esdb.Position   // position of the last event read, nil at Start
		lat  []time.Duration
	)
	start := time.Now()
	for res.Events < n {
		if h.MaxDuration > 0 && time.Since(start) >= h.MaxDuration {
			break
		}
		want := min(h.PageSize, n-res.Events)
		ask := want
		if last != nil {
			ask++ // a forwards read from a position returns the event at it again
		}
		t0 := time.Now()
		got, bytes, end, err := readPage(ctx, c, from, last, ask)
		if err != nil {
			return Result{}, fmt.Errorf("bench: read-all: %w", err)
		}
		lat = append(lat, time.Since(t0))
		res.Events += got
		res.Bytes += bytes
		switch {
		case got == 0 && last == nil:
			return Result{}, ErrEmptyLog
		case got < want: // end of the log: start over
			from, last = esdb.Start{}, nil
		default:
			from, last = end, &end
		}
	}
	res.Elapsed = time.Since(start)
	res.Ops = len(lat)
	res.P50, res.P99 = percentiles(lat)
	return res, nil
}

// readPage reads up to count events from `from`, skipping the one at `skip`,
// and returns how many it got, their payload bytes and the last position.
func readPage(ctx context.Context, c *esdb.Client, from esdb.AllPosition, skip *esdb.Position, count int) (got int, bytes int64, lastPos esdb.Position, err error) {
	rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{From: from}, uint64(count))
	if err != nil {
		return 0, 0, lastPos, err
	}
	defer rs.Close()
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return got, bytes, lastPos, nil
		}
		if err != nil {
			return 0, 0, lastPos, err
		}
		e := ev.OriginalEvent()
		if skip != nil && e.Position == *skip {
			continue
		}
		got++
		bytes += int64(len(e.Data))
		lastPos = e.Position
	}
}

func eventType(rev int64) string {
	switch {
	case rev == 0:
		return typeOrderPlaced
	case rev%8 == 6:
		return typeOrderPaid
	case rev%8 == 7:
		return typeOrderShipped
	default:
		return typeOrderLineAdded
	}
}

// orderPayload appends an OrderPlaced-like JSON document (~240 bytes) to buf.
func orderPayload(buf []byte, orderID string, rev int64) []byte {
	sku := 10000 + rev%90000
	return fmt.Appendf(buf,
		`{"orderId":%q,"customerId":"cust-%06d","revision":%d,"lines":[{"sku":"SKU-%05d","quantity":2,"unitPriceMinor":1999},{"sku":"SKU-%05d","quantity":1,"unitPriceMinor":4500}],"currency":"EUR","totalMinor":8498,"placedAt":"2025-11-24T11:04:00Z"}`,
		orderID, rev%1000000, rev, sku, sku+1)
}

// percentiles returns the median and 99th percentile of lat (which it sorts).
func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	return lat[(len(lat)-1)/2], lat[(len(lat)-1)*99/100]
}
