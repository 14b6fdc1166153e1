package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/orderstore/orders/eventstore"
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
	if _, err := s.f.WriteAt(s.buf, int64(s.next)*SyncSize); err != nil {
		return fmt.Errorf("bench: sync probe: %w", err)
	}
	s.next = (s.next + 1) % s.slots
	if err := s.f.SyncData(); err != nil {
		return fmt.Errorf("bench: sync probe: %w", err)
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

// MeasureSyncedAppend runs append-1 (n events, rounds times) through the
// official client against a NewSyncingStub writing its file in dir, and
// returns the median round: the single-writer ceiling measured rather than
// added up.
func MeasureSyncedAppend(ctx context.Context, dir string, h Harness, n, rounds int) (res Result, err error) {
	if n < 1 || rounds < 1 {
		return Result{}, fmt.Errorf("%w: n = %d, rounds = %d", ErrInvalidArgument, n, rounds)
	}
	stub, err := NewSyncingStub(dir)
	if err != nil {
		return Result{}, err
	}
	defer func() { err = errors.Join(err, stub.Close()) }()
	if err := stub.Start(); err != nil {
		return Result{}, err
	}
	c, err := eventstore.Connect(stub.ConnectionString())
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	if err := WarmUp(ctx, c); err != nil {
		return Result{}, fmt.Errorf("bench: syncing stub: %w", err)
	}
	var rs []Result
	for range rounds {
		r, err := h.AppendSingle(ctx, c, n)
		if err != nil {
			return Result{}, fmt.Errorf("bench: syncing stub: %w", err)
		}
		rs = append(rs, r)
	}
	return median(rs), nil
}

// WriteCeiling prints the sync probe and the single-writer ceiling under
// the table of Compare, with the node's append-1 as a fraction of it; if
// synced has events (MeasureSyncedAppend), also the measured ceiling and
// the node's append-1 as a fraction of that.
func WriteCeiling(w io.Writer, rows []Row, sync SyncResult, synced Result) error {
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
	if err != nil || synced.Events == 0 {
		return err
	}
	_, err = fmt.Fprintf(w, "measured single-writer ceiling: the stub syncing that write before each answer: %s appends/s (p50 %v, p99 %v); node append-1 = %.2f of it\n",
		rate(synced.EventsPerSec()), roundLatency(synced.P50), roundLatency(synced.P99), node/synced.EventsPerSec())
	return err
}
