package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Target names of the peer suite.
const (
	TargetNode     = "node"
	TargetPostgres = "postgres"
	TargetNATS     = "nats"
)

// AllTargets are the suite's targets in report order.
var allTargets = []string{TargetNode, TargetPostgres, TargetNATS}

// AllTargets returns the names of every target of the peer suite.
func AllTargets() []string { return slices.Clone(allTargets) }

// SuiteOptions configures RunSuite. Start from FullSuite or QuickSuite.
type SuiteOptions struct {
	// Targets to run (default AllTargets). A peer that cannot start (no
	// nats-server binary, PostgreSQL unreachable) is reported as not run;
	// a node that cannot start fails the suite.
	Targets []string
	// DataDir holds the data of the in-process node and of nats-server;
	// required.
	DataDir string
	// NodeURL measures that node instead of starting one (no memory figure).
	NodeURL string
	// NodeCommand, if set, runs the node as a child process with this
	// command line, which must print {"connectionString": ...} on its first
	// stdout line ("orders node --addr 127.0.0.1:0 --data DIR --json"); its
	// resident memory is then the node's alone. Otherwise the node runs
	// in-process and the memory figure includes the benchmark's clients.
	NodeCommand []string
	// PostgresURL (default DefaultPostgresURL); the suite creates a schema
	// of its own there and drops it at the end.
	PostgresURL string
	// NATSServer is the nats-server binary ("" looks for one, see
	// FindNATSServer).
	NATSServer string

	// Sizes are the events preloaded in each store before its figures are
	// taken, ascending (the stores keep growing: a size is "at least").
	Sizes []int
	// Rounds each workload runs per size and target; figures are the
	// median round.
	Rounds int
	// MaxDuration caps every timed workload but catch-up (0: no cap).
	MaxDuration time.Duration
	// Writers are the concurrent single-event writers, one workload each.
	Writers []int
	// Batch is the events per append of the batch workload.
	Batch int

	SingleEvents     int // events per round of append-1
	ConcurrentEvents int // events per round of each other append-<writers>
	BatchEvents      int // events per round of batch-<Batch>
	ReadEvents       int // events per round of read-all
	CatchUpEvents    int // events of catch-up (at most what the store holds)

	// OrderFlow is how long the order flow (place and pay, with the app's
	// projections running) runs on the node, once, at the first size (0:
	// not run).
	OrderFlow time.Duration

	// Progress, if set, receives one line per step.
	Progress func(format string, args ...any)
}

// FullSuite is the full run: 0, 1,000,000 and 10,000,000 events, 3 rounds,
// catch-up over 1,000,000 events.
func FullSuite() SuiteOptions {
	return SuiteOptions{
		Sizes:            []int{0, 1_000_000, 10_000_000},
		Rounds:           3,
		MaxDuration:      5 * time.Second,
		Writers:          []int{1, 16, 64},
		Batch:            100,
		SingleEvents:     10_000,
		ConcurrentEvents: 100_000,
		BatchEvents:      500_000,
		ReadEvents:       500_000,
		CatchUpEvents:    1_000_000,
		OrderFlow:        10 * time.Second,
	}
}

// QuickSuite finishes in well under a minute: an empty store, one round,
// small workloads capped at one second.
func QuickSuite() SuiteOptions {
	return SuiteOptions{
		Sizes:            []int{0},
		Rounds:           1,
		MaxDuration:      time.Second,
		Writers:          []int{1, 16, 64},
		Batch:            100,
		SingleEvents:     500,
		ConcurrentEvents: 4_000,
		BatchEvents:      10_000,
		ReadEvents:       20_000,
		CatchUpEvents:    10_000,
		OrderFlow:        2 * time.Second,
	}
}

func (o SuiteOptions) validate() error {
	switch {
	case o.DataDir == "":
		return fmt.Errorf("%w: SuiteOptions.DataDir is required", ErrInvalidArgument)
	case len(o.Sizes) == 0 || !slices.IsSorted(o.Sizes) || o.Sizes[0] < 0:
		return fmt.Errorf("%w: sizes %v must be ascending and not negative", ErrInvalidArgument, o.Sizes)
	case o.Rounds < 1 || o.Batch < 1 || len(o.Writers) == 0 || slices.Min(o.Writers) < 1:
		return fmt.Errorf("%w: rounds %d, batch %d, writers %v", ErrInvalidArgument, o.Rounds, o.Batch, o.Writers)
	case o.SingleEvents < 1 || o.ConcurrentEvents < 1 || o.BatchEvents < 1 || o.ReadEvents < 1 || o.CatchUpEvents < 1:
		return fmt.Errorf("%w: every workload needs at least one event", ErrInvalidArgument)
	}
	for _, t := range o.Targets {
		if !slices.Contains(allTargets, t) {
			return fmt.Errorf("%w: unknown target %q (want %v)", ErrInvalidArgument, t, allTargets)
		}
	}
	return nil
}

func (o SuiteOptions) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(format, args...)
	}
}

// suiteTarget is a started target and what the suite wrote to it.
type suiteTarget struct {
	Target
	written int
}

// RunSuite starts the targets, and at each size preloads every store to it,
// runs the workloads (append-<w> for each writer count, batch-<Batch>,
// read-all) Rounds times interleaved across targets, then catch-up once, and
// records the node's resident memory; at the first size it also runs the
// order flow with the app's projections on the node. On an error after
// the targets started it returns the report so far with the error.
func RunSuite(ctx context.Context, opts SuiteOptions) (_ *Report, err error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	names := opts.Targets
	if len(names) == 0 {
		names = allTargets
	}
	rep := newReport(opts)
	var targets []*suiteTarget
	defer func() {
		for _, t := range targets {
			rep.refreshNotes(t.Target)
			err = errors.Join(err, t.Close())
		}
		rep.finish()
	}()
	for _, name := range allTargets {
		if !slices.Contains(names, name) {
			rep.addTarget(name, nil, "not run: not selected")
			continue
		}
		opts.progress("starting %s", name)
		t, err := startTarget(ctx, name, opts)
		if err != nil {
			if name == TargetNode {
				return rep, err
			}
			rep.addTarget(name, nil, "not run: "+err.Error())
			continue
		}
		targets = append(targets, &suiteTarget{Target: t})
		rep.addTarget(name, t, "")
	}

	pw := peerWorkloads{maxDuration: opts.MaxDuration}
	type workload struct {
		name    string
		appends bool // the events of its Result were written
		run     func(context.Context, Target) (Result, error)
	}
	var workloads []workload
	for _, w := range opts.Writers {
		n := opts.ConcurrentEvents
		if w == 1 {
			n = opts.SingleEvents
		}
		workloads = append(workloads, workload{fmt.Sprintf("append-%d", w), true, func(ctx context.Context, t Target) (Result, error) {
			return pw.appendN(ctx, t, fmt.Sprintf("append-%d", w), w, 1, n)
		}})
	}
	workloads = append(workloads,
		workload{fmt.Sprintf("batch-%d", opts.Batch), true, func(ctx context.Context, t Target) (Result, error) {
			return pw.appendN(ctx, t, fmt.Sprintf("batch-%d", opts.Batch), 1, opts.Batch, opts.BatchEvents)
		}},
		workload{"read-all", false, func(ctx context.Context, t Target) (Result, error) {
			return pw.readAll(ctx, t, opts.ReadEvents)
		}},
	)

	for _, size := range opts.Sizes {
		for _, t := range targets {
			if missing := size - t.written; missing > 0 {
				opts.progress("size %d: preloading %s with %d events", size, t.Name(), missing)
				start := time.Now()
				if err := t.Preload(ctx, missing); err != nil {
					return rep, fmt.Errorf("bench: preload %s: %w", t.Name(), err)
				}
				loaded := time.Since(start)
				var settle time.Duration
				var settleErr error
				if s, ok := t.Target.(settler); ok {
					opts.progress("size %d: %s settling after the preload", size, t.Name())
					start = time.Now()
					settleErr = s.Settle(ctx)
					settle = time.Since(start)
					if ctx.Err() != nil {
						return rep, ctx.Err()
					}
				}
				rep.addPreload(t.Name(), size, missing, loaded, settle, settleErr)
				t.written += missing
			}
		}
		rep.addMemory(size, "after preload", targets)
		rep.addDisk(ctx, size, targets)
		results := make(map[string]map[string][]Result) // workload → target → rounds
		for round := range opts.Rounds {
			for _, w := range workloads {
				for _, t := range targets {
					res, err := w.run(ctx, t)
					if err != nil {
						return rep, err
					}
					if w.appends {
						t.written += res.Events
					}
					opts.progress("size %d round %d: %s %v", size, round+1, t.Name(), res)
					if results[w.name] == nil {
						results[w.name] = make(map[string][]Result)
					}
					results[w.name][t.Name()] = append(results[w.name][t.Name()], res)
				}
			}
		}
		for _, w := range workloads {
			rep.addTable(w.name, size, results[w.name])
		}
		catchUps := make(map[string][]Result)
		// The same count on every target: the smallest store bounds it.
		n := opts.CatchUpEvents
		for _, t := range targets {
			n = min(n, t.written)
		}
		for _, t := range targets {
			res, err := catchUp(ctx, t, n)
			if err != nil {
				return rep, err
			}
			opts.progress("size %d: %s %v", size, t.Name(), res)
			catchUps[t.Name()] = []Result{res}
		}
		rep.addTable("catch-up", size, catchUps)
		if size == opts.Sizes[0] {
			if err := runOrderFlow(ctx, opts, rep, targets); err != nil {
				return rep, err
			}
		}
		rep.addMemory(size, "after workloads", targets)
	}
	return rep, nil
}

func startTarget(ctx context.Context, name string, opts SuiteOptions) (Target, error) {
	switch name {
	case TargetNode:
		return newESDBTarget(ctx, esdbConfig{URL: opts.NodeURL, Command: opts.NodeCommand, DataDir: filepath.Join(opts.DataDir, "node")})
	case TargetPostgres:
		return newPGTarget(ctx, opts.PostgresURL, slices.Max(opts.Writers))
	default:
		bin, err := FindNATSServer(opts.NATSServer)
		if err != nil {
			return nil, err
		}
		return newNATSTarget(ctx, bin, filepath.Join(opts.DataDir, "nats"))
	}
}

// runOrderFlow runs OrderFlow on the node, if it runs and the option asks.
func runOrderFlow(ctx context.Context, opts SuiteOptions, rep *Report, targets []*suiteTarget) error {
	if opts.OrderFlow <= 0 {
		rep.NotRun = append(rep.NotRun, NotRun{Workload: "order-flow", Reason: "not asked for"})
		return nil
	}
	for _, t := range targets {
		node, ok := t.Target.(*esdbTarget)
		if !ok {
			continue
		}
		dir := filepath.Join(opts.DataDir, "orderflow")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		res, catchUp, err := OrderFlow(ctx, node.url, dir, opts.OrderFlow)
		if err != nil {
			return err
		}
		opts.progress("size %d: node %v; projections caught up %v after", opts.Sizes[0], res, catchUp)
		rep.addTable("order-flow", opts.Sizes[0], map[string][]Result{TargetNode: {res}})
		rep.OrderFlowCatchUp = catchUp
		return nil
	}
	rep.NotRun = append(rep.NotRun, NotRun{Workload: "order-flow", Reason: "the node did not run"})
	return nil
}
