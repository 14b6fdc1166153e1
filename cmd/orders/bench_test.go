package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBenchQuickJSON runs `orders bench --quick --json` on the node alone (run as a child
// process of the binary) and checks the JSON report.
func TestBenchQuickJSON(t *testing.T) {
	md := filepath.Join(t.TempDir(), "bench.md")
	var rep struct {
		Targets []struct {
			Name   string `json:"name"`
			Ran    bool   `json:"ran"`
			Reason string `json:"reason"`
		} `json:"targets"`
		Tables []struct {
			Workload string `json:"workload"`
			Size     int    `json:"size"`
			Figures  []struct {
				Target       string  `json:"target"`
				EventsPerSec float64 `json:"eventsPerSec"`
				Ratio        float64 `json:"ratioToBest"`
			} `json:"figures"`
		} `json:"tables"`
		Memory []struct {
			RSSBytes int64  `json:"rssBytes"`
			Error    string `json:"error"`
		} `json:"memory"`
		Options struct {
			NodeProcess string `json:"nodeProcess"`
		} `json:"options"`
	}
	ok(t, &rep, "bench", "--quick", "--targets", "node", "--duration", "300ms", "--md", md)

	require.Len(t, rep.Targets, 3)
	assert.True(t, rep.Targets[0].Ran)
	assert.Equal(t, "not run: not selected", rep.Targets[1].Reason)
	assert.Equal(t, "child process", rep.Options.NodeProcess)
	var workloads []string
	for _, tb := range rep.Tables {
		workloads = append(workloads, tb.Workload)
		require.Len(t, tb.Figures, 1, tb.Workload)
		assert.Equal(t, "node", tb.Figures[0].Target)
		assert.Positive(t, tb.Figures[0].EventsPerSec, tb.Workload)
		assert.Equal(t, 1.0, tb.Figures[0].Ratio, tb.Workload)
	}
	assert.Equal(t, []string{"append-1", "append-16", "append-64", "batch-100", "read-all", "catch-up", "order-flow"}, workloads)
	require.NotEmpty(t, rep.Memory)
	for _, m := range rep.Memory {
		assert.Empty(t, m.Error)
		assert.Greater(t, m.RSSBytes, int64(1<<20), "the child node's resident memory")
	}
	b, err := os.ReadFile(md)
	require.NoError(t, err)
	assert.Contains(t, string(b), "### read-all, 0 events in the store")
}

func TestBenchBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown target", []string{"--targets", "node,mongo"}, `"mongo" is not one of node,postgres,nats`},
		{"sizes not numbers", []string{"--sizes", "0,lots"}, "bad --sizes"},
		{"sizes descending", []string{"--sizes", "1000,0"}, "not ascending"},
		{"zero rounds", []string{"--rounds", "0"}, "--rounds must be at least 1"},
		{"negative duration", []string{"--duration", "-1s"}, "--duration must be positive"},
		{"bad node process", []string{"--node-process", "docker"}, "--node-process must be"},
		{"argument", []string{"now"}, `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, append([]string{"bench", "--quick"}, tt.args...)...)
			assert.Equal(t, exitUsage, r.code)
			assert.Empty(t, r.stdout)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
			assert.True(t, strings.HasPrefix(r.stderr, "orders: "), r.stderr)
			assert.Contains(t, r.stderr, tt.want)
		})
	}
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("0, 1_000_000,10000000")
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1_000_000, 10_000_000}, got)
	for _, bad := range []string{"-1", "", "1,,2", "2,1"} {
		_, err = parseSizes(bad)
		assert.ErrorAs(t, err, new(*usageError), bad)
	}
}
