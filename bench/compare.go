package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/orderstore/orders/eventstore"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/orderstore/orders/eventstore/esdbnode"
)

// Full-size defaults of Options: at most 4 workloads × 2 targets × 3 rounds
// × 5 s, plus the read-all preload; under two and a half minutes.
const (
	DefaultWriters          = 16
	DefaultBatch            = 100
	DefaultSingleEvents     = 10_000
	DefaultConcurrentEvents = 20_000
	DefaultBatchEvents      = 100_000
	DefaultReadEvents       = 100_000
	DefaultRounds           = 3
	DefaultMaxDuration      = 5 * time.Second
)

// Options configures Compare. Zero fields take the Default… values.
type Options struct {
	// DataDir is the embedded node's data directory; required unless
	// NodeConnectionString is set.
	DataDir string
	// NodeConnectionString, if set, measures that node (e.g. a real
	// EventStoreDB) instead of starting an embedded one.
	NodeConnectionString string
	// Logger is the embedded node's logger (nil discards).
	Logger *slog.Logger

	Writers          int // writers of the concurrent workload
	Batch            int // events per append of the batch workload
	SingleEvents     int // events of append-1
	ConcurrentEvents int // events of append-<Writers>
	BatchEvents      int // events of batch-<Batch>
	ReadEvents       int // events of read-all

	// Rounds is how many times the whole sequence of workloads runs (default
	// DefaultRounds); each Row holds the round with the median events/s, so
	// one disturbed round on a shared machine does not make the figure.
	Rounds int
	// MaxDuration caps each workload on each target; negative means no cap.
	MaxDuration time.Duration
	// Harness is used for every workload; its MaxDuration is replaced by
	// Options.MaxDuration.
	Harness Harness

	// SyncDir, if set, makes Compare also run the append workloads against
	// a NewSyncingStub whose file is in SyncDir (a third target,
	// "synced", interleaved with the other two): the ceilings of a store
	// that makes each append durable and does nothing else.
	SyncDir string

	// OnResult, if set, is called after each workload on each target
	// ("node", "stub" or "synced").
	OnResult func(target string, r Result)
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Writers, DefaultWriters)
	def(&o.Batch, DefaultBatch)
	def(&o.SingleEvents, DefaultSingleEvents)
	def(&o.ConcurrentEvents, DefaultConcurrentEvents)
	def(&o.BatchEvents, DefaultBatchEvents)
	def(&o.ReadEvents, DefaultReadEvents)
	def(&o.Rounds, DefaultRounds)
	switch {
	case o.MaxDuration == 0:
		o.MaxDuration = DefaultMaxDuration
	case o.MaxDuration < 0:
		o.MaxDuration = 0
	}
	o.Harness.MaxDuration = o.MaxDuration
	return o
}

// Row is one workload measured on the node and on the stub, and for the
// append workloads of a Compare with Options.SyncDir on the syncing stub
// (Synced; zero otherwise).
type Row struct {
	Workload string
	Node     Result
	Stub     Result
	Synced   Result
}

// Ratio is the node's events/s over the stub's (0 if the stub did nothing).
func (r Row) Ratio() float64 {
	return ratio(r.Node.EventsPerSec(), r.Stub.EventsPerSec())
}

// Compare runs append-1, append-<Writers>, batch-<Batch> and read-all on the
// node and on a fresh Stub (and the appends on a NewSyncingStub if
// Options.SyncDir is set), each workload on the node, then the stub, then
// the syncing stub, the whole sequence Rounds times, and returns one Row
// per workload in that order with the median round of each target. Before
// read-all each target is preloaded (untimed) up to ReadEvents events if
// the earlier workloads wrote fewer.
func Compare(ctx context.Context, opts Options) (rows []Row, err error) {
	opts = opts.withDefaults()
	nodeURL := opts.NodeConnectionString
	if nodeURL == "" {
		if opts.DataDir == "" {
			return nil, fmt.Errorf("%w: Options.DataDir is required for the embedded node", ErrInvalidArgument)
		}
		node, err := esdbnode.New(esdbnode.Config{Addr: "127.0.0.1:0", DataDir: opts.DataDir, Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("bench: node: %w", err)
		}
		if err := node.Start(); err != nil {
			return nil, fmt.Errorf("bench: start node: %w", err)
		}
		defer func() { err = errors.Join(err, node.Close()) }()
		nodeURL = node.ConnectionString()
	}
	stub := NewStub()
	if err := stub.Start(); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stub.Close()) }()

	targets := []*target{{name: "node"}, {name: "stub"}}
	urls := []string{nodeURL, stub.ConnectionString()}
	if opts.SyncDir != "" {
		synced, serr := NewSyncingStub(opts.SyncDir)
		if serr != nil {
			return nil, serr
		}
		defer func() { err = errors.Join(err, synced.Close()) }()
		if err := synced.Start(); err != nil {
			return nil, err
		}
		targets = append(targets, &target{name: "synced", appendsOnly: true})
		urls = append(urls, synced.ConnectionString())
	}
	for i, url := range urls {
		c, err := eventstore.Connect(url)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		targets[i].c = c
		if err := WarmUp(ctx, c); err != nil {
			return nil, fmt.Errorf("bench: %s: %w", targets[i].name, err)
		}
	}

	h := opts.Harness
	workloads := []struct {
		name   string
		append bool
		run    func(context.Context, *target) (Result, error)
	}{
		{"append-1", true, func(ctx context.Context, t *target) (Result, error) {
			return h.AppendSingle(ctx, t.c, opts.SingleEvents)
		}},
		{fmt.Sprintf("append-%d", opts.Writers), true, func(ctx context.Context, t *target) (Result, error) {
			return h.AppendConcurrent(ctx, t.c, opts.Writers, opts.ConcurrentEvents)
		}},
		{fmt.Sprintf("batch-%d", opts.Batch), true, func(ctx context.Context, t *target) (Result, error) {
			return h.AppendBatch(ctx, t.c, opts.Batch, opts.BatchEvents)
		}},
		{"read-all", false, func(ctx context.Context, t *target) (Result, error) {
			if missing := opts.ReadEvents - t.written; missing > 0 {
				if err := h.Preload(ctx, t.c, missing); err != nil {
					return Result{}, err
				}
				runtime.GC() // the preload's garbage is not the read's
			}
			return h.ReadAll(ctx, t.c, opts.ReadEvents)
		}},
	}
	// results[w][t] holds one Result per round of workload w on target t.
	results := make([][3][]Result, len(workloads))
	for range opts.Rounds {
		for i, w := range workloads {
			for j, t := range targets {
				if t.appendsOnly && !w.append {
					continue
				}
				// The targets share this process: each run starts without
				// the garbage of the one before, as a testing.B run does.
				runtime.GC()
				res, err := w.run(ctx, t)
				if err != nil {
					return nil, fmt.Errorf("bench: %s on %s: %w", w.name, t.name, err)
				}
				t.written += res.Events
				if opts.OnResult != nil {
					opts.OnResult(t.name, res)
				}
				results[i][j] = append(results[i][j], res)
			}
		}
	}
	for i, w := range workloads {
		row := Row{Workload: w.name, Node: median(results[i][0]), Stub: median(results[i][1])}
		if len(results[i][2]) > 0 {
			row.Synced = median(results[i][2])
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// median returns the Result with the median events/s (the lower middle one
// for an even count).
func median(rs []Result) Result {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b Result) int { return cmp.Compare(a.EventsPerSec(), b.EventsPerSec()) })
	return rs[(len(rs)-1)/2]
}

type target struct {
	name        string
	c           *esdb.Client
	written     int  // events appended by the workloads so far
	appendsOnly bool // the syncing stub: no read-all
}

// WriteMarkdown renders rows as a markdown table: events/s on the node and
// the stub, their ratio, and the per-call latencies.
func WriteMarkdown(w io.Writer, rows []Row) error {
	var b strings.Builder
	b.WriteString("| workload | node events/s | stub events/s | node/stub | node p50 / p99 per call | stub p50 / p99 per call |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %v / %v | %v / %v |\n",
			r.Workload, rate(r.Node.EventsPerSec()), rate(r.Stub.EventsPerSec()), r.Ratio(),
			roundLatency(r.Node.P50), roundLatency(r.Node.P99), roundLatency(r.Stub.P50), roundLatency(r.Stub.P99))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// rate formats events/s with thousands separators and no decimals.
func rate(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func roundLatency(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Microsecond:
		return d.Round(time.Microsecond)
	default:
		return d
	}
}
