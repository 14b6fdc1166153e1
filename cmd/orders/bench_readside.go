package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/orderstore/orders/bench"
)

// Read-side section of orders bench: events appended per run (--read-side-events).
const (
	readSideEvents      = 60000
	readSideEventsQuick = 1500
	readSideRate        = 200 // orders/s of the paced live run
)

// benchReadSide runs the read-side section (projections live, saturated and paced, and
// rebuilding, next to the ceiling probe) on SQLite and, when the postgres target is
// selected, on PostgreSQL, and attaches it to rep.
func (a *app) benchReadSide(ctx context.Context, f benchFlags, opts bench.SuiteOptions, dir string, rep *bench.Report) error {
	n := f.readSideEvents
	if n < 0 {
		return nil
	}
	if n == 0 {
		n = readSideEvents
		if f.quick {
			n = readSideEventsQuick
		}
	}
	o := bench.ReadSideOptions{Events: n, Rate: readSideRate, Dir: filepath.Join(dir, "readside")}
	if slices.Contains(opts.Targets, "postgres") {
		o.PostgresURL = opts.PostgresURL
		if o.PostgresURL == "" {
			o.PostgresURL = bench.DefaultPostgresURL
		}
	}
	if opts.Progress != nil {
		o.Logf = opts.Progress
	}
	rs, err := bench.ReadSide(ctx, o)
	rep.ReadSide = rs
	if err != nil {
		return fmt.Errorf("bench: read side: %w", err)
	}
	return nil
}
