package eventlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
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
	indexDir         = "index"
)

// ErrOldLayout says the data directory was written by a version of the log
// that kept the events in Pebble; Open refuses it (see the package doc).
var ErrOldLayout = errors.New("eventlog: data directory has the old layout (events in Pebble, no chunk files)")

// Log is the embedded node's durable event log. It is safe for concurrent
// use. Open recovers it; appends are written by whichever caller finds the
// log idle (see writer.go); Close waits for the current group commit.
type Log struct {
	fs        vfs.FS
	dir       string
	db        *pebble.DB
	now       func() time.Time
	newID     func() uuid.UUID
	chunkSize int64

	maxBatch  int
	overlapAt int           // group size from which sync and index overlap
	reqs      chan *request // requests waiting for a leader

	// rw guards closed: enqueuers and readers hold it shared, so that once
	// Close has set closed no request enters reqs unanswered and no read
	// runs on closed files.
	rw      sync.RWMutex
	closed  bool
	closing chan struct{} // closed by Close
	// lead is held by the leader, the one goroutine writing the log; it may
	// be handed from one goroutine to the next without being unlocked.
	lead    sync.Mutex
	w       *writer // owned by the holder of lead
	once    sync.Once
	closeEr error

	chunks atomic.Pointer[[]*chunk] // every chunk, by number; grows
	ckpts  atomic.Pointer[[]loc]    // location of position i*ckptEvery+1; grows

	head   atomic.Uint64
	waitCh atomic.Pointer[chan struct{}] // closed and replaced on each head advance
	syncs  atomic.Uint64                 // group commits (fdatasync rounds) so far

	droppedTail  bool // Open dropped a torn group (for tests)
	rebuiltIndex bool // Open found the index ahead and rebuilt it (for tests)
	// failed is the writer's sticky failure: index entries of the failed
	// group may be visible, and their records never become durable, so
	// waiters for them get this error instead of waiting forever.
	failed atomic.Pointer[error]
}

// fail records the writer's sticky failure and wakes waiters.
func (l *Log) fail(err error) {
	l.failed.Store(&err)
	next := make(chan struct{})
	old := l.waitCh.Swap(&next)
	close(*old)
}

// Open opens the log stored in dir, creating it if needed: it opens the
// index, scans the chunk files from the last indexed position (dropping a
// torn tail, failing on corruption) and brings the index up to date.
func Open(dir string, opts Options) (*Log, error) {
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	l := &Log{
		fs:        fs,
		dir:       dir,
		now:       opts.Now,
		newID:     opts.NewID,
		chunkSize: opts.ChunkSize,
		maxBatch:  opts.MaxBatch,
		overlapAt: overlapRecords,
		closing:   make(chan struct{}),
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
	if l.chunkSize == 0 {
		l.chunkSize = DefaultChunkSize
	}
	if l.chunkSize < minChunkSize || l.chunkSize > 1<<31 {
		return nil, fmt.Errorf("%w: chunk size %d (want %d..%d)", ErrInvalid, l.chunkSize, minChunkSize, 1<<31)
	}
	l.chunkSize = (l.chunkSize + 4095) &^ 4095
	l.reqs = make(chan *request, 4*l.maxBatch)
	ch := make(chan struct{})
	l.waitCh.Store(&ch)
	if err := checkLayout(fs, dir); err != nil {
		return nil, err
	}
	// The directories' own entries must be durable before anything in
	// them is acknowledged.
	if err := mkdirSynced(fs, fs.PathJoin(dir, indexDir)); err != nil {
		return nil, err
	}
	db, err := openIndex(fs, fs.PathJoin(dir, indexDir), opts.IndexCacheSize)
	if err != nil {
		return nil, err
	}
	l.db = db
	if err := l.checkIndexFormat(); err != nil {
		l.closeFiles()
		return nil, err
	}
	tail, err := l.recover()
	if err != nil {
		l.closeFiles()
		return nil, err
	}
	ckpts, err := loadCkpts(db, tail.next-1)
	if err != nil {
		l.closeFiles()
		return nil, err
	}
	l.ckpts.Store(&ckpts)
	l.head.Store(tail.next - 1)
	l.w = newWriter(l, tail)
	return l, nil
}

// mkdirSynced creates dir and its missing parents and syncs each parent
// directory whose entries changed.
func mkdirSynced(fs vfs.FS, dir string) error {
	if _, err := fs.Stat(dir); err == nil {
		return nil
	}
	parent := fs.PathDir(dir)
	if parent != dir {
		if err := mkdirSynced(fs, parent); err != nil {
			return err
		}
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	return syncDir(fs, parent)
}

// checkLayout refuses a directory holding the old layout: Pebble's files
// directly in dir.
func checkLayout(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("eventlog: list %s: %w", dir, err)
	}
	for _, name := range names {
		if strings.HasPrefix(name, "MANIFEST-") || strings.HasSuffix(name, ".sst") || strings.HasPrefix(name, "marker.manifest") {
			return fmt.Errorf("%w: %s holds %s; start with an empty data directory, or keep running the previous version on it", ErrOldLayout, dir, name)
		}
	}
	return nil
}

// indexMemTableSize is the size of each of the index's memtables.
const indexMemTableSize = 32 << 20

// openIndex opens the Pebble index. Its WAL is off: the chunk files are the
// source of truth and Open re-indexes whatever the index lost.
//
// Pebble reserves every memtable it holds (the mutable one, one being
// flushed or kept for reuse) out of its block cache, so the cache is sized
// as two memtables plus cacheSize: with Pebble's default 8 MiB, smaller than
// one memtable, no block was ever cached and every index lookup read and
// decompressed its blocks again.
func openIndex(fs vfs.FS, dir string, cacheSize int64) (*pebble.DB, error) {
	switch {
	case cacheSize == 0:
		cacheSize = DefaultIndexCacheSize
	case cacheSize < 0:
		cacheSize = 0
	}
	po := &pebble.Options{
		FS:                          fs,
		FormatMajorVersion:          pebble.FormatNewest,
		DisableWAL:                  true,
		CacheSize:                   2*indexMemTableSize + cacheSize,
		MemTableSize:                indexMemTableSize,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		LBaseMaxBytes:               256 << 20,
		Logger:                      quietLogger{},
	}
	po.EnsureDefaults()
	for i := range po.Levels {
		// Point lookups ('h', 'i', 's' by revision) dominate appends; range
		// scans ignore the filter.
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].FilterType = pebble.TableFilter
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("eventlog: open index %s: %w", dir, err)
	}
	return db, nil
}

// checkIndexFormat drops an index whose keys are not of indexFormat (an
// index written by an earlier version), so that recover rebuilds it from
// the chunk files, and marks the index with indexFormat. The mark goes into
// the memtable before any entry, so whatever Pebble persists of later
// entries persists it too.
func (l *Log) checkIndexFormat() error {
	var format uint64 // 0: none
	v, closer, err := l.db.Get(formatKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("eventlog: index: %w", err)
	default:
		format, err = decodeU64(v)
		closer.Close()
		if err != nil {
			return fmt.Errorf("eventlog: index format: %w", err)
		}
	}
	if format == indexFormat {
		return nil
	}
	if _, hasMeta, err := readIndexMeta(l.db); err == nil && hasMeta {
		l.rebuiltIndex = true
	}
	return l.dropIndex()
}

// dropIndex deletes every index entry and marks the empty index with
// indexFormat.
func (l *Log) dropIndex() error {
	if err := l.db.DeleteRange([]byte{0}, []byte{0xff}, pebble.NoSync); err != nil {
		return fmt.Errorf("eventlog: drop index: %w", err)
	}
	if err := l.db.Set(formatKey, binary.BigEndian.AppendUint64(nil, indexFormat), pebble.NoSync); err != nil {
		return fmt.Errorf("eventlog: index format: %w", err)
	}
	return nil
}

// recover opens the chunk files, finds the end of the log and indexes what
// the index lacks; when the index refers to records the chunks do not hold,
// it drops the index and rebuilds it from the first chunk.
func (l *Log) recover() (logTail, error) {
	nums, err := listChunks(l.fs, l.dir)
	if err != nil {
		return logTail{}, err
	}
	meta, ok, err := readIndexMeta(l.db)
	if err != nil {
		return logTail{}, err
	}
	if len(nums) == 0 {
		if ok && meta.pos > 0 {
			return logTail{}, fmt.Errorf("eventlog: %w: the index covers %d records but %s has no chunk files", ErrCorrupt, meta.pos, l.dir)
		}
		c, err := createChunk(l.fs, l.dir, 0, min(l.chunkSize, firstChunkSize))
		if err != nil {
			return logTail{}, err
		}
		l.chunks.Store(&[]*chunk{c})
		return logTail{next: 1, end: makeLoc(0, chunkHeaderSize)}, nil
	}
	chunks := make([]*chunk, 0, len(nums))
	l.chunks.Store(&chunks)
	for _, n := range nums {
		c, err := openChunk(l.fs, l.dir, n)
		if err != nil {
			return logTail{}, err
		}
		chunks = append(chunks, c)
		l.chunks.Store(&chunks)
	}
	if !ok {
		meta = indexMeta{end: makeLoc(0, chunkHeaderSize)}
	}
	for attempt := 0; ; attempt++ {
		rb := newRebuilder(l.db)
		tail, err := recoverChunks(chunks, rb, meta)
		rb.close()
		if errors.Is(err, errIndexAhead) && attempt == 0 && meta.pos > 0 {
			if err := l.dropIndex(); err != nil {
				return logTail{}, err
			}
			meta = indexMeta{end: makeLoc(0, chunkHeaderSize)}
			l.rebuiltIndex = true
			continue
		}
		if err != nil {
			return logTail{}, err
		}
		l.droppedTail = tail.dropped
		if keep := int(tail.end.chunk()) + 1; keep < len(chunks) {
			// Chunks past the end hold nothing but the dropped group.
			for n := len(chunks) - 1; n >= keep; n-- {
				if err := chunks[n].f.Close(); err != nil {
					return logTail{}, fmt.Errorf("eventlog: %w", err)
				}
				if err := l.fs.Remove(l.fs.PathJoin(l.dir, chunkName(uint32(n)))); err != nil {
					return logTail{}, fmt.Errorf("eventlog: remove torn chunk: %w", err)
				}
				chunks = chunks[:n]
				l.chunks.Store(&chunks)
			}
			if err := syncDir(l.fs, l.dir); err != nil {
				return logTail{}, err
			}
		}
		return tail, nil
	}
}

// Close stops accepting requests, lets the current group commit finish,
// answers queued requests with ErrClosed, flushes the index and closes the
// files. It is idempotent.
func (l *Log) Close() error {
	l.once.Do(func() {
		l.rw.Lock()
		l.closed = true
		l.rw.Unlock()
		close(l.closing)
		l.lead.Lock() // the leader sees closing and refuses the rest
		l.refuseQueued()
		l.w.waitPrepared()
		err := l.db.Flush()
		l.closeEr = errors.Join(err, l.closeFiles())
	})
	return l.closeEr
}

func (l *Log) closeFiles() error {
	var errs []error
	if cs := l.chunks.Load(); cs != nil {
		for _, c := range *cs {
			errs = append(errs, c.f.Close())
		}
	}
	errs = append(errs, l.db.Close())
	return errors.Join(errs...)
}

// refuseQueued answers every queued request with ErrClosed.
func (l *Log) refuseQueued() {
	for {
		select {
		case r := <-l.reqs:
			r.finish(AppendResult{}, ErrClosed)
		default:
			return
		}
	}
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

// Wait blocks until Head() > after, ctx is done (ctx.Err()), the log
// closes (ErrClosed) or its writer failed (that error).
func (l *Log) Wait(ctx context.Context, after uint64) error {
	for {
		ch := l.waitCh.Load()
		if l.head.Load() > after {
			return nil
		}
		if err := l.failed.Load(); err != nil {
			return *err
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

// awaitDurable waits until pos is at or below the published head. The
// index is written after the sync but before the head is published; a
// reader that saw such an entry waits for the writer to publish it.
func (l *Log) awaitDurable(ctx context.Context, pos uint64) error {
	if pos == 0 || l.head.Load() >= pos {
		return nil
	}
	return l.Wait(ctx, pos-1)
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
	req := &request{ctx: ctx, op: opAppend, stream: stream, exp: exp, events: events}
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
	req := &request{ctx: ctx, op: op, stream: stream, exp: exp}
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
	l.rw.RLock()
	if l.closed {
		l.rw.RUnlock()
		return ErrClosed
	}
	return nil
}

func (l *Log) leave() { l.rw.RUnlock() }

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
