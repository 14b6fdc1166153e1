package bench

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func startProcess(t *testing.T, args ...string) int {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
}

// An idle process settles after one window; a busy one does not, and the
// wait says so once its limit has passed.
func TestWaitIdle(t *testing.T) {
	idle := startProcess(t, "sleep", "60")
	start := time.Now()
	require.NoError(t, waitIdle(t.Context(), idle, time.Minute))
	assert.GreaterOrEqual(t, time.Since(start), settleWindow)

	busy := startProcess(t, "sh", "-c", "while :; do :; done")
	err := waitIdle(t.Context(), busy, 2*time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "still busy after 2s")
}

func TestProcessCPU(t *testing.T) {
	busy := startProcess(t, "sh", "-c", "while :; do :; done")
	path := fmt.Sprintf("/proc/%d/stat", busy)
	first, err := processCPU(path)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		cur, err := processCPU(path)
		return err == nil && cur >= first+50*time.Millisecond
	}, 10*time.Second, 10*time.Millisecond, "a spinning process's CPU time does not grow")
	_, err = processCPU("/proc/0/stat")
	assert.Error(t, err)
}
