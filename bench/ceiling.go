package bench

import (
	"fmt"
	"io"
	"slices"
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
	fs := vfs.Default
	path := fs.PathJoin(dir, "syncprobe")
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return SyncResult{}, fmt.Errorf("bench: sync probe: %w", err)
	}
	defer func() { _ = fs.Remove(path) }()
	defer f.Close()
	size := int64(n) * SyncSize
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			return SyncResult{}, fmt.Errorf("bench: sync probe: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return SyncResult{}, fmt.Errorf("bench: sync probe: %w", err)
	}
	buf := make([]byte, SyncSize)
	for i := range buf {
		buf[i] = byte(i)
	}
	lat := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		if _, err := f.WriteAt(buf, int64(i)*SyncSize); err != nil {
			return SyncResult{}, fmt.Errorf("bench: sync probe: %w", err)
		}
		if err := f.SyncData(); err != nil {
			return SyncResult{}, fmt.Errorf("bench: sync probe: %w", err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return SyncResult{N: n, P50: lat[(n-1)/2], P99: lat[(n*99-1)/100]}, nil
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

// WriteCeiling prints the sync probe and the single-writer ceiling under
// the table of Compare, with the node's append-1 as a fraction of it.
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
	_, err := fmt.Fprintf(w, "\nfdatasync after a %d-byte write to a preallocated file: p50 %v, p99 %v (%d syncs)\n"+
		"single-writer ceiling: 1 / (stub append-1 p50 %v + sync p50 %v) = %s appends/s; node append-1 %s = %.2f of it\n",
		SyncSize, roundLatency(sync.P50), roundLatency(sync.P99), sync.N,
		roundLatency(one.Stub.P50), roundLatency(sync.P50), rate(c), rate(one.Node.EventsPerSec()), one.Node.EventsPerSec()/c)
	return err
}
