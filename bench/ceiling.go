package bench

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// SyncSize is the write that MeasureSync syncs: about one small append's
// frame, rounded up to a page.
const SyncSize = 4096

// SyncResult is the latency of fdatasync after a SyncSize write to a
// preallocated file.
type SyncResult struct {
	N        int
	P50, P99 time.Duration
}

// MeasureSync measures n rounds of "write SyncSize bytes, fdatasync" at
// successive offsets of a file in dir that was first zero-filled and synced
// (preallocated the way the node's chunk files are: written zeros, not
// fallocate, so that the sync has no block allocation or file size to
// write). It uses the same vfs.File.SyncData as the node's log.
func MeasureSync(dir string, n int) (SyncResult, error) {
	if n < 1 {
		return SyncResult{}, fmt.Errorf("%w: n = %d", ErrInvalidArgument, n)
	}
	f, err := newSyncFile(dir, n)
	if err != nil {
		return SyncResult{}, err
	}
	defer f.close()
	lat := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := f.writeSync(); err != nil {
			return SyncResult{}, err
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return SyncResult{N: n, P50: lat[(n-1)/2], P99: lat[(n*99-1)/100]}, nil
}

// syncFile is a preallocated file of slots SyncSize-byte slots that
// writeSync writes one after the other (wrapping around), each followed by
// an fdatasync.
type syncFile struct {
	fs    vfs.FS
	path  string
	f     vfs.File
	buf   []byte
	slots int
	next  int
}

func newSyncFile(dir string, slots int) (*syncFile, error) {
	fs := vfs.Default
	path := fs.PathJoin(dir, "syncprobe")
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("bench: sync probe: %w", err)
	}
	s := &syncFile{fs: fs, path: path, f: f, buf: make([]byte, SyncSize), slots: slots}
	size := int64(slots) * SyncSize
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err = f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("bench: sync probe: %w", err)
	}
	for i := range s.buf {
		s.buf[i] = byte(i)
	}
	return s, nil
}

// writeSync writes the next slot and syncs it. Not safe for concurrent use.
func (s *syncFile) writeSync() error {
	if err := s.write(SyncSize); err != nil {
		return err
	}
	return s.sync()
}

// write writes size bytes, rounded up to whole slots (at least one, at most
// all), at the next slots, starting over at the first slot when they do not
// fit before the end. Not safe for concurrent use with itself; safe beside
// sync.
func (s *syncFile) write(size int) error {
	k := min(max(1, (size+SyncSize-1)/SyncSize), s.slots)
	if s.next+k > s.slots {
		s.next = 0
	}
	for len(s.buf) < k*SyncSize {
		s.buf = append(s.buf, byte(len(s.buf)))
	}
	if _, err := s.f.WriteAt(s.buf[:k*SyncSize], int64(s.next)*SyncSize); err != nil {
		return fmt.Errorf("bench: sync probe: %w", err)
	}
	s.next = (s.next + k) % s.slots
	return nil
}

// sync fdatasyncs the file: every write that returned before it is durable
// when it returns.
func (s *syncFile) sync() error {
	if err := s.f.SyncData(); err != nil {
		return fmt.Errorf("bench: sync probe: %w", err)
	}
	return nil
}

// groupSync makes writes to a syncFile durable with group commit, the way
// the node's log does it without its log: a caller writes, then either
// finds no sync running and runs one itself (covering every write made so
// far), or waits for the running one to end and checks again. A lone
// writer thus writes and syncs on its own goroutine; concurrent ones share
// syncs. Each call returns only after a sync that began after its write.
type groupSync struct {
	write   func(size int) error // syncFile.write
	sync    func() error         // syncFile.sync
	mu      sync.Mutex
	ended   *sync.Cond // a sync ended
	written uint64     // writes made
	synced  uint64     // writes covered by a finished sync
	syncing bool
	err     error // sticky: a write or sync failed
	syncs   atomic.Uint64
}

func newGroupSync(f *syncFile) *groupSync {
	g := &groupSync{write: f.write, sync: f.sync}
	g.ended = sync.NewCond(&g.mu)
	return g
}

// writeSync writes size bytes (see syncFile.write) and returns once they
// are synced.
func (g *groupSync) writeSync(size int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return g.err
	}
	if err := g.write(size); err != nil {
		g.err = err
		return err
	}
	g.written++
	mine := g.written
	for g.synced < mine {
		if g.err != nil {
			return g.err
		}
		if g.syncing {
			g.ended.Wait()
			continue
		}
		g.syncing = true
		upTo := g.written
		g.mu.Unlock()
		err := g.sync()
		g.mu.Lock()
		g.syncing = false
		g.syncs.Add(1)
		if err != nil {
			g.err = err
		} else {
			g.synced = upTo
		}
		g.ended.Broadcast()
	}
	return nil
}

func (s *syncFile) close() {
	_ = s.f.Close()
	_ = s.fs.Remove(s.path)
}

// AppendCeiling is the single-writer ceiling of appends/s: one protocol round
// trip (the stub's append-1 p50) plus one sync (the probe's p50).
func AppendCeiling(stubAppend1 Result, sync SyncResult) float64 {
	d := stubAppend1.P50 + sync.P50
	if d <= 0 {
		return 0
	}
	return float64(time.Second) / float64(d)
}

// WriteCeiling prints, under the table of Compare, the sync probe and the
// single-writer ceiling with the node's append-1 as a fraction of it; and,
// if the rows have the syncing stub's figures (Options.SyncDir), a table of
// those measured ceilings: each as a fraction of the stub, and the node as a
// fraction of each.
func WriteCeiling(w io.Writer, rows []Row, sync SyncResult) error {
	var one *Row
	for i := range rows {
		if rows[i].Workload == "append-1" {
			one = &rows[i]
		}
	}
	if one == nil {
		return fmt.Errorf("%w: no append-1 row", ErrInvalidArgument)
	}
	c := AppendCeiling(one.Stub, sync)
	node := one.Node.EventsPerSec()
	_, err := fmt.Fprintf(w, "\nfdatasync after a %d-byte write to a preallocated file: p50 %v, p99 %v (%d syncs)\n"+
		"single-writer ceiling: 1 / (stub append-1 p50 %v + sync p50 %v) = %s appends/s; node append-1 %s = %.2f of it\n",
		SyncSize, roundLatency(sync.P50), roundLatency(sync.P99), sync.N,
		roundLatency(one.Stub.P50), roundLatency(sync.P50), rate(c), rate(node), node/c)
	if err != nil || !slices.ContainsFunc(rows, func(r Row) bool { return r.Synced.Events > 0 }) {
		return err
	}
	if _, err := fmt.Fprint(w, "\nmeasured ceilings: the stub that writes each append's bytes and fdatasyncs them (group commit) before answering\n\n"+
		"| workload | syncing stub events/s | syncing stub / stub | node / syncing stub | syncing stub p50 / p99 per call |\n"+
		"|---|---:|---:|---:|---:|\n"); err != nil {
		return err
	}
	for _, r := range rows {
		if r.Synced.Events == 0 {
			continue
		}
		sy := r.Synced.EventsPerSec()
		if _, err := fmt.Fprintf(w, "| %s | %s | %.2f | %.2f | %v / %v |\n", r.Workload, rate(sy),
			ratio(sy, r.Stub.EventsPerSec()), ratio(r.Node.EventsPerSec(), sy),
			roundLatency(r.Synced.P50), roundLatency(r.Synced.P99)); err != nil {
			return err
		}
	}
	return nil
}

// ratio is a / b, 0 if b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
