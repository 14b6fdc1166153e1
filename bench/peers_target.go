package bench

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/google/uuid"
)

// Target is one store the peer suite measures: the embedded node through the
// official client, a PostgreSQL event table through pgx, or NATS JetStream.
// Every method may be called from several goroutines at once.
type Target interface {
	// Name is the column name in the report: "node", "postgres", "nats".
	Name() string
	// Append appends events to stream atomically if the store can, with
	// expected the token returned by the previous Append to that stream
	// (NoToken for a stream that must not exist yet), and returns the token
	// to expect next time. A stale token fails the append.
	Append(ctx context.Context, stream string, expected int64, events []Event) (int64, error)
	// ReadPage reads up to count events of the whole store in global order,
	// after the cursor (from the start for the zero Cursor). A Page with
	// fewer events than count means the end of the store was reached.
	ReadPage(ctx context.Context, after Cursor, count int) (Page, error)
	// CatchUp subscribes from the start of the store the way a subscriber
	// of this store does (a catch-up subscription, keyset polling, an
	// ordered consumer) and returns once it has received n events.
	CatchUp(ctx context.Context, n int) error
	// Preload appends n events (untimed), as fast as the store allows.
	Preload(ctx context.Context, n int) error
	// Close releases the target and everything it started.
	Close() error
}

// memoryReporter is implemented by targets that can tell the resident
// memory of the store's process.
type memoryReporter interface {
	RSS() (int64, error)
}

// diskReporter is implemented by targets that can tell how many bytes their
// store takes on disk.
type diskReporter interface {
	DiskBytes(ctx context.Context) (int64, error)
}

// dirBytes is the total size of the regular files under dir.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bench: size of %s: %w", dir, err)
	}
	return n, nil
}

// NoToken is the expected token of a stream that must not exist yet.
const NoToken int64 = -1

// Event is one event to append.
type Event struct {
	ID   uuid.UUID
	Type string
	Data []byte
}

// Cursor is a position in a store's global order. Its meaning is the
// target's own: the commit and prepare positions of $all, a global sequence.
type Cursor struct {
	Commit, Prepare uint64
	Set             bool // false: the start of the store
}

// Page is what one ReadPage returned.
type Page struct {
	Events int
	Bytes  int64
	Last   Cursor // position of the last event of the page
}

// peerWorkloads runs the suite's workloads against any Target.
type peerWorkloads struct {
	streamsPerWriter int
	pageSize         int
	maxDuration      time.Duration // 0: no cap
}

func (p peerWorkloads) withDefaults() peerWorkloads {
	if p.streamsPerWriter <= 0 {
		p.streamsPerWriter = DefaultStreamsPerWriter
	}
	if p.pageSize <= 0 {
		p.pageSize = DefaultPageSize
	}
	return p
}

// appendN appends n events (rounded up to a multiple of batch), batch events
// per append, from `writers` concurrent writers each cycling through its own
// streams with the token it got back from its previous append.
func (p peerWorkloads) appendN(ctx context.Context, t Target, name string, writers, batch, n int) (Result, error) {
	if n < 1 || writers < 1 || batch < 1 {
		return Result{}, fmt.Errorf("%w: %s with n=%d writers=%d batch=%d", ErrInvalidArgument, name, n, writers, batch)
	}
	p = p.withDefaults()
	ws := make([]*peerWriter, writers)
	base := make([]*writer, writers)
	for i := range ws {
		ws[i] = newPeerWriter(p.streamsPerWriter, batch)
		base[i] = ws[i].writer
	}
	res, err := driveWriters(ctx, name, base, batch, n, p.maxDuration, func(ctx context.Context, i int) error {
		return ws[i].append(ctx, t)
	})
	if err != nil {
		return Result{}, fmt.Errorf("bench: %s on %s: %w", name, t.Name(), err)
	}
	return res, nil
}

// peerWriter is writer for a Target: the same streams and payloads, with the
// target's concurrency token per stream in place of the client's revision.
type peerWriter struct {
	*writer
	tokens []int64 // token to expect next, NoToken before the first append
}

func newPeerWriter(streams, batch int) *peerWriter {
	w := &peerWriter{writer: newWriter(streams, batch), tokens: make([]int64, streams)}
	for i := range w.tokens {
		w.tokens[i] = NoToken
	}
	return w
}

func (w *peerWriter) append(ctx context.Context, t Target) error {
	i := w.next % len(w.streams)
	w.next++
	events := make([]Event, w.batch)
	for j := range events {
		rev := w.revs[i] + 1 + int64(j)
		data := orderPayload(nil, w.orderIDs[i], rev)
		w.bytes += int64(len(data))
		events[j] = Event{ID: uuid.New(), Type: eventType(rev), Data: data}
	}
	token, err := t.Append(ctx, w.streams[i], w.tokens[i], events)
	if err != nil {
		return fmt.Errorf("append to %s (expected %d): %w", w.streams[i], w.tokens[i], err)
	}
	w.tokens[i] = token
	w.revs[i] += int64(w.batch)
	return nil
}

// readAll reads n events in pages from the start of the store, starting
// over at the start when it reaches the end.
func (p peerWorkloads) readAll(ctx context.Context, t Target, n int) (Result, error) {
	if n < 1 {
		return Result{}, fmt.Errorf("%w: read-all with n=%d", ErrInvalidArgument, n)
	}
	p = p.withDefaults()
	res := Result{Name: "read-all", Writers: 1}
	var (
		from Cursor
		lat  []time.Duration
	)
	start := time.Now()
	for res.Events < n {
		if p.maxDuration > 0 && time.Since(start) >= p.maxDuration {
			break
		}
		want := min(p.pageSize, n-res.Events)
		t0 := time.Now()
		page, err := t.ReadPage(ctx, from, want)
		if err != nil {
			return Result{}, fmt.Errorf("bench: read-all on %s: %w", t.Name(), err)
		}
		lat = append(lat, time.Since(t0))
		res.Events += page.Events
		res.Bytes += page.Bytes
		switch {
		case page.Events == 0 && !from.Set:
			return Result{}, fmt.Errorf("%w (%s)", ErrEmptyLog, t.Name())
		case page.Events < want:
			from = Cursor{}
		default:
			from = page.Last
		}
	}
	res.Elapsed = time.Since(start)
	res.Ops = len(lat)
	res.P50, res.P99 = percentiles(lat)
	return res, nil
}

// catchUp times a subscriber from the start of the store until it has
// received n events. It is never capped: the figure is the whole catch-up.
func catchUp(ctx context.Context, t Target, n int) (Result, error) {
	if n < 1 {
		return Result{}, fmt.Errorf("%w: catch-up with n=%d", ErrInvalidArgument, n)
	}
	start := time.Now()
	if err := t.CatchUp(ctx, n); err != nil {
		return Result{}, fmt.Errorf("bench: catch-up on %s: %w", t.Name(), err)
	}
	el := time.Since(start)
	return Result{Name: "catch-up", Writers: 1, Ops: 1, Events: n, Elapsed: el, P50: el, P99: el}, nil
}
