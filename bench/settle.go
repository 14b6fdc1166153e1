package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// settler is implemented by targets whose store keeps working after a bulk
// load (an LSM's compactions, a database's vacuum and checkpoint). Settle
// waits for that work, or does it, so that the timed figures at a size
// measure a store of that size in its steady state rather than the debt of
// a load made seconds before. RunSuite calls it after each preload and
// reports how long it took.
type settler interface {
	Settle(ctx context.Context) error
}

const (
	// settleWindow and settleIdle: a process has settled when its CPU time
	// grew by less than settleIdle of one core over settleWindow.
	settleWindow = time.Second
	settleIdle   = 0.05
	// settleMax bounds the wait; a store still busy then is measured busy.
	settleMax = 10 * time.Minute
)

// waitIdle waits until the process pid (0: this process) uses less than
// settleIdle of a core over a settleWindow, or limit has passed (an error
// says so).
func waitIdle(ctx context.Context, pid int, limit time.Duration) error {
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	deadline := time.Now().Add(limit)
	prev, err := processCPU(path)
	if err != nil {
		return err
	}
	t := time.NewTicker(settleWindow)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		cur, err := processCPU(path)
		if err != nil {
			return err
		}
		if float64(cur-prev) < settleIdle*float64(settleWindow) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: still busy after %v (%v of CPU in the last %v)", limit, cur-prev, settleWindow)
		}
		prev = cur
	}
}

// processCPU is the user plus system CPU time of a process, from its
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s).
func processCPU(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: unexpected %s", path)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: unexpected %s", path)
	}
	var ticks int64
	for _, v := range f[11:13] { // fields 14 (utime) and 15 (stime)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: %s: %w", path, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
