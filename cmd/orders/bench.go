package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderstore/orders/bench"
)

// envTestPostgres names the environment variable with the default PostgreSQL URL of bench.
const envTestPostgres = "ORDERS_TEST_POSTGRES"

// Ways of running the node under bench.
const (
	nodeChild     = "child"
	nodeInProcess = "in-process"
)

// benchFlags are the flags of bench.
type benchFlags struct {
	quick      bool
	verbose    bool
	rounds     int
	sizes      string
	targets    string
	pgURL      string
	natsServer string
	duration   time.Duration
	dataDir    string
	node       string
	cpuProfile string
	mdFile     string

	readSideEvents int
}

func (a *app) benchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench [--quick] [--json] [--rounds N] [--sizes 0,1000000,10000000] [--targets node,postgres,nats]",
		Short: "Measure the embedded node against PostgreSQL and NATS JetStream, side by side",
		Long: "bench runs the same workloads through the same client-side harness against the embedded node\n" +
			"(official client), a PostgreSQL event table (pgx, synchronous_commit=on) and NATS JetStream\n" +
			"(its own nats-server, if one is found), at each store size, and prints a markdown table per\n" +
			"workload (or, with --json, one JSON object). Each store is filled to a size untimed and left to\n" +
			"settle before the figures: the node until its process is idle (its index compacting what the\n" +
			"load wrote), PostgreSQL after VACUUM (ANALYZE) and CHECKPOINT. --quick finishes in under a\n" +
			"minute. With an explicit\n" +
			"--esdb (or ORDERS_ESDB) it measures that node instead of the embedded one.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := a.benchOptions(cmd, f)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if f.cpuProfile != "" {
				pf, err := os.Create(f.cpuProfile)
				if err != nil {
					return err
				}
				defer pf.Close()
				if err := pprof.StartCPUProfile(pf); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			dir := f.dataDir
			if dir == "" {
				if dir, err = os.MkdirTemp("", "orders-bench-"); err != nil {
					return err
				}
				defer os.RemoveAll(dir)
			}
			opts.DataDir = dir
			if opts.NodeURL == "" && f.node == nodeChild {
				self, err := os.Executable()
				if err != nil {
					return fmt.Errorf("bench: find the orders binary to run the node: %w", err)
				}
				opts.NodeCommand = []string{self, "node", "--addr", "127.0.0.1:0", "--data", dir + "/node",
					"--json", "--log-level", "error"}
			}
			rep, err := bench.RunSuite(ctx, opts)
			if err == nil {
				err = a.benchReadSide(ctx, f, opts, dir, rep)
			}
			if rep != nil && f.mdFile != "" {
				// What was measured before a failure is still worth keeping.
				err = errors.Join(err, writeMarkdownFile(f.mdFile, rep))
			}
			if err != nil {
				return err
			}
			if a.jsonOut {
				return rep.WriteJSON(a.stdout)
			}
			return rep.WriteMarkdown(a.stdout)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.quick, "quick", false, "a run of under a minute: empty stores, one round, small workloads")
	fl.BoolVar(&f.verbose, "verbose", false, "print progress on stderr")
	fl.IntVar(&f.rounds, "rounds", 0, "rounds per workload, the median shown (default 3, 1 with --quick)")
	fl.StringVar(&f.sizes, "sizes", "", "events in each store before the figures, ascending (default 0,1000000,10000000; 0 with --quick)")
	fl.StringVar(&f.targets, "targets", strings.Join(bench.AllTargets(), ","), "targets to run")
	fl.StringVar(&f.pgURL, "pg", "", "PostgreSQL URL (default env "+envTestPostgres+" or "+bench.DefaultPostgresURL+")")
	fl.StringVar(&f.natsServer, "nats-server", "", "nats-server binary (default: nats-server on PATH or /usr/sbin/nats-server)")
	fl.DurationVar(&f.duration, "duration", 0, "cap of each workload per round (default 5s, 1s with --quick)")
	fl.StringVar(&f.dataDir, "data", "", "directory for the node's and nats-server's data (default a temporary one, removed)")
	fl.StringVar(&f.node, "node-process", nodeChild, "run the embedded node as a child process (child: its own memory figure) or in-process (in-process: for -cpuprofile)")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (with --node-process in-process it covers the node)")
	fl.IntVar(&f.readSideEvents, "read-side-events", 0, "events of the read-side section (projections live and rebuilding; default 60000, 1500 with --quick; -1: skip it)")
	fl.StringVar(&f.mdFile, "md", "", "also write the markdown tables to this file (with --json, one run gives both)")
	return cmd
}

func writeMarkdownFile(path string, rep *bench.Report) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteMarkdown(out); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// benchOptions turns the flags into the suite's options.
func (a *app) benchOptions(cmd *cobra.Command, f benchFlags) (bench.SuiteOptions, error) {
	opts := bench.FullSuite()
	if f.quick {
		opts = bench.QuickSuite()
	}
	fl := cmd.Flags()
	if fl.Changed("rounds") {
		if f.rounds < 1 {
			return opts, usageErrorf("--rounds must be at least 1, got %d", f.rounds)
		}
		opts.Rounds = f.rounds
	}
	if fl.Changed("duration") {
		if f.duration <= 0 {
			return opts, usageErrorf("--duration must be positive, got %v", f.duration)
		}
		opts.MaxDuration = f.duration
	}
	if fl.Changed("sizes") {
		sizes, err := parseSizes(f.sizes)
		if err != nil {
			return opts, err
		}
		opts.Sizes = sizes
	}
	targets, err := parseTargets(f.targets)
	if err != nil {
		return opts, err
	}
	opts.Targets = targets
	if f.node != nodeChild && f.node != nodeInProcess {
		return opts, usageErrorf("--node-process must be %s or %s, got %q", nodeChild, nodeInProcess, f.node)
	}
	opts.PostgresURL = f.pgURL
	if opts.PostgresURL == "" {
		if v, ok := a.lookupEnv(envTestPostgres); ok && v != "" {
			opts.PostgresURL = v
		}
	}
	opts.NATSServer = f.natsServer
	if a.esdbExplicit(cmd) {
		opts.NodeURL = a.esdbURL
	}
	if f.verbose {
		opts.Progress = func(format string, args ...any) {
			fmt.Fprintf(a.stderr, "orders bench: "+format+"\n", args...)
		}
	}
	return opts, nil
}

// parseSizes parses "0,1000000,10000000" (underscores allowed: 1_000_000).
func parseSizes(s string) ([]int, error) {
	var sizes []int
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(part), "_", ""))
		if err != nil || n < 0 {
			return nil, usageErrorf("bad --sizes %q: want ascending event counts like 0,1000000", s)
		}
		sizes = append(sizes, n)
	}
	if !slices.IsSorted(sizes) {
		return nil, usageErrorf("bad --sizes %q: not ascending", s)
	}
	return sizes, nil
}

// parseTargets parses "node,postgres,nats".
func parseTargets(s string) ([]string, error) {
	var targets []string
	all := bench.AllTargets()
	for part := range strings.SplitSeq(s, ",") {
		t := strings.TrimSpace(part)
		if !slices.Contains(all, t) {
			return nil, usageErrorf("bad --targets %q: %q is not one of %s", s, t, strings.Join(all, ","))
		}
		if !slices.Contains(targets, t) {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return nil, usageErrorf("--targets names no target")
	}
	return targets, nil
}
