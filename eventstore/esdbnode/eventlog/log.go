package eventlog

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

const (
	defaultMaxBatch  = 256
	maxCachedStreams = 1 << 18
)

// Log is the embedded node's durable event log. It is safe for concurrent
// use; Open starts its writer goroutine and Close stops it.
type Log struct {
	db    *pebble.DB
	now   func() time.Time
	newID func() uuid.UUID

	maxBatch int
	reqs     chan *request

	// mu guards closed: senders hold it shared while enqueueing, so that
	// once Close has set closed no request can enter reqs unanswered.
	mu      sync.RWMutex
	closed  bool
	closing chan struct{} // closed by Close: the writer drains and exits
	done    chan struct{} // closed when the writer has exited
	once    sync.Once
	closeEr error

	head   atomic.Uint64
	waitCh atomic.Pointer[chan struct{}] // closed and replaced on each head advance
	syncs  atomic.Uint64                 // group commits (pebble syncs) so far
}

// Open opens the log stored in dir, creating it if needed, and starts the
// writer.
func Open(dir string, opts Options) (*Log, error) {
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	po := &pebble.Options{
		FS:                          fs,
		FormatMajorVersion:          pebble.FormatNewest,
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		LBaseMaxBytes:               256 << 20,
		Logger:                      quietLogger{},
	}
	po.EnsureDefaults()
	for i := range po.Levels {
		// Point lookups ('h', 'i', 's' by revision, 'l' by position) dominate
		// appends; range scans ignore the filter.
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].FilterType = pebble.TableFilter
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("eventlog: open %s: %w", dir, err)
	}
	l := &Log{
		db:       db,
		now:      opts.Now,
		newID:    opts.NewID,
		maxBatch: opts.MaxBatch,
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.newID == nil {
		l.newID = uuid.New
	}
	if l.maxBatch <= 0 {
		l.maxBatch = defaultMaxBatch
	}
	l.reqs = make(chan *request, 4*l.maxBatch)
	ch := make(chan struct{})
	l.waitCh.Store(&ch)
	last, err := lastPosition(db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	l.head.Store(last)
	w := newWriter(l, last)
	go w.run()
	return l, nil
}

// lastPosition finds the highest 'l' key.
func lastPosition(db *pebble.DB) (uint64, error) {
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixLog},
		UpperBound: []byte{prefixLog + 1},
	})
	if err != nil {
		return 0, fmt.Errorf("eventlog: %w", err)
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	k := it.Key()
	if len(k) != 9 {
		return 0, fmt.Errorf("%w: bad log key %x", ErrCorrupt, k)
	}
	return decodeU64(k[1:])
}

// Close stops accepting requests, lets the writer finish its current batch,
// answers pending requests with ErrClosed and closes the store. It is
// idempotent.
func (l *Log) Close() error {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.closing)
		<-l.done
		l.closeEr = l.db.Close()
	})
	return l.closeEr
}

// Head is the position of the last durable record, 0 for an empty log.
func (l *Log) Head() uint64 { return l.head.Load() }

// publish makes pos the head and wakes waiters.
func (l *Log) publish(pos uint64) {
	l.head.Store(pos)
	next := make(chan struct{})
	old := l.waitCh.Swap(&next)
	close(*old)
}

// Wait blocks until Head() > after, ctx is done (ctx.Err()) or the log
// closes (ErrClosed).
func (l *Log) Wait(ctx context.Context, after uint64) error {
	for {
		ch := l.waitCh.Load()
		if l.head.Load() > after {
			return nil
		}
		select {
		case <-*ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-l.closing:
			return ErrClosed
		}
	}
}

// awaitDurable waits until pos is at or below the published head. Pebble
// makes a batch visible before its WAL sync completes; a reader that saw
// such a batch waits for the writer to publish it.
func (l *Log) awaitDurable(ctx context.Context, pos uint64) error {
	if pos == 0 || l.head.Load() >= pos {
		return nil
	}
	return l.Wait(ctx, pos-1)
}

// submit hands req to the writer and waits for its answer.
func (l *Log) submit(ctx context.Context, req *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	select {
	case l.reqs <- req:
	case <-ctx.Done():
		l.mu.RUnlock()
		return ctx.Err()
	}
	l.mu.RUnlock()
	// The writer answers every request it received, also on Close; waiting
	// for ctx here could report a failure for a write that then commits.
	<-req.done
	return req.err
}

// Append checks exp against the stream (EventStoreDB's decision table,
// idempotent re-append by event id), writes the events with consecutive
// revisions and positions, and returns once they are synced to disk.
func (l *Log) Append(ctx context.Context, stream string, exp Expected, events []Proposed) (AppendResult, error) {
	if err := validStream(stream); err != nil {
		return AppendResult{}, err
	}
	for i := range events {
		if events[i].Type == "" {
			return AppendResult{}, fmt.Errorf("%w: event %d has no type", ErrInvalid, i)
		}
	}
	req := &request{ctx: ctx, op: opAppend, stream: stream, exp: exp, events: events, done: make(chan struct{})}
	if err := l.submit(ctx, req); err != nil {
		return AppendResult{}, err
	}
	return req.res, nil
}

// Delete soft-deletes stream: it writes {"$tb":MaxInt64} to $$stream and
// returns that record's position.
func (l *Log) Delete(ctx context.Context, stream string, exp Expected) (uint64, error) {
	return l.deleteOp(ctx, opDelete, stream, exp)
}

// Tombstone hard-deletes stream and returns the tombstone record's position.
func (l *Log) Tombstone(ctx context.Context, stream string, exp Expected) (uint64, error) {
	return l.deleteOp(ctx, opTombstone, stream, exp)
}

func (l *Log) deleteOp(ctx context.Context, op opKind, stream string, exp Expected) (uint64, error) {
	if err := validStream(stream); err != nil {
		return 0, err
	}
	if _, meta := originalOf(stream); meta {
		return 0, fmt.Errorf("%w: cannot delete metastream %q", ErrInvalid, stream)
	}
	req := &request{ctx: ctx, op: op, stream: stream, exp: exp, done: make(chan struct{})}
	if err := l.submit(ctx, req); err != nil {
		return 0, err
	}
	return req.res.Position, nil
}

func validStream(stream string) error {
	switch {
	case stream == "":
		return fmt.Errorf("%w: empty stream name", ErrInvalid)
	case stream == "$all":
		return fmt.Errorf("%w: stream $all", ErrInvalid)
	case stream == metaPrefix:
		return fmt.Errorf("%w: stream %q", ErrInvalid, stream)
	}
	return nil
}

// enter guards a read against a concurrent Close: Close waits for reads in
// progress and later reads get ErrClosed. Reads must not nest enter.
func (l *Log) enter() error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (l *Log) leave() { l.mu.RUnlock() }

// quietLogger drops Pebble's informational messages (flushes, compactions)
// and passes errors and fatal errors to Pebble's default logger.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	pebble.DefaultLogger.Errorf(format, args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf(format, args...)
}
