package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/spf13/cobra"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/projections/verify"
)

// envDB names the environment variable that gives the read-model database URL.
const envDB = "ORDERS_DB"

// envData names the environment variable that gives the data directory (serve's and node's
// --data, and where the commands that read the read models look for them).
const envData = "ORDERS_DATA"

// defaultDataDir is --data unless ORDERS_DATA says otherwise.
const defaultDataDir = "./data"

// defaultDBFile is the SQLite file of the read models inside the data directory.
const defaultDBFile = "readmodels.db"

// defaultHTTPAddr is where serve's HTTP server listens unless --http says otherwise.
const defaultHTTPAddr = "127.0.0.1:8080"

// envDB returns ORDERS_DB or "".
func (a *app) envDB() string {
	if v, ok := a.lookupEnv(envDB); ok {
		return v
	}
	return ""
}

// envDataDir returns ORDERS_DATA, else the default data directory.
func (a *app) envDataDir() string {
	if v, ok := a.lookupEnv(envData); ok && v != "" {
		return v
	}
	return defaultDataDir
}

// dbFlag registers --db and --data on a command that reads the read models, with serve's
// defaults: --db (env ORDERS_DB) wins; without it the database is <data>/readmodels.db, --data
// (env ORDERS_DATA) defaulting to ./data like serve's. A --data given on the command line wins
// over ORDERS_DB from the environment.
func (a *app) dbFlag(cmd *cobra.Command, db *string) {
	f := cmd.Flags()
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		a.readFlags = c.Flags() // the command that runs
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
	f.StringVar(db, "db", a.envDB(), "read-model database: postgres://... or a SQLite file (default <data>/"+defaultDBFile+"; env "+envDB+")")
	f.StringVar(&a.readData, "data", a.envDataDir(), "data directory of orders serve, whose "+defaultDBFile+" is read unless --db is given (env "+envData+")")
}

// openStore opens the read models: db, or <--data>/readmodels.db when db is "". A missing
// SQLite file is an error here: only serve creates the database.
func (a *app) openStore(ctx context.Context, db string) (*projections.Store, error) {
	if a.readFlags != nil && a.readFlags.Changed("data") && !a.readFlags.Changed("db") {
		db = ""
	}
	if db == "" {
		db = filepath.Join(a.readData, defaultDBFile)
	}
	if !strings.HasPrefix(db, "postgres://") && !strings.HasPrefix(db, "postgresql://") {
		path := strings.TrimPrefix(db, "sqlite://")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no read-model database at %s (run orders serve first, or pass --data or --db): %w", path, errors.Unwrap(err))
		}
	}
	return projections.Open(ctx, db)
}

func (a *app) listCmd() *cobra.Command {
	var db, status, customer string
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--status S] [--customer EMAIL] [--limit N] [--data DIR | --db URL]",
		Short: "List orders from the order_summaries read model",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch status {
			case "", "placed", "paid", "shipped", "cancelled":
			default:
				return usageErrorf("bad --status %q: want placed, paid, shipped or cancelled", status)
			}
			if limit < 0 {
				return usageErrorf("bad --limit %d: must not be negative", limit)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
			defer cancel()
			s, err := a.openStore(ctx, db)
			if err != nil {
				return err
			}
			defer s.Close()
			orders, err := s.ListOrders(ctx, projections.ListFilter{Status: status, Customer: customer, Limit: limit})
			if err != nil {
				return err
			}
			if a.jsonOut {
				out := struct {
					Orders []listOutput `json:"orders"`
				}{Orders: make([]listOutput, len(orders))}
				for i, o := range orders {
					out.Orders[i] = listJSON(o)
				}
				return a.printJSON(out)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tCUSTOMER\tTOTAL\tPLACED")
			for _, o := range orders {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.OrderID, o.Status, o.Customer, aggregate.FormatMoney(o.Total, o.Currency), o.PlacedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	a.dbFlag(cmd, &db)
	f := cmd.Flags()
	f.StringVar(&status, "status", "", "only orders in this status: placed, paid, shipped, cancelled")
	f.StringVar(&customer, "customer", "", "only orders of this customer (e-mail address)")
	f.IntVar(&limit, "limit", 0, "at most N orders (0: all)")
	return cmd
}

// listOutput is one order of list --json, in show's vocabulary: "id" is the order id,
// "lineCount" the number of lines (show's "lines" lists them), amounts in minor units.
type listOutput struct {
	ID           string    `json:"id"`
	Status       string    `json:"status"`
	Customer     string    `json:"customer"`
	Total        int64     `json:"total"`
	Currency     string    `json:"currency"`
	LineCount    int64     `json:"lineCount"`
	PaymentRef   string    `json:"paymentRef,omitempty"`
	PaidAmount   int64     `json:"paidAmount"`
	PlacedAt     time.Time `json:"placedAt"`
	PaidAt       time.Time `json:"paidAt,omitzero"`
	ShippedAt    time.Time `json:"shippedAt,omitzero"`
	CancelledAt  time.Time `json:"cancelledAt,omitzero"`
	CancelReason string    `json:"cancelReason,omitempty"`
	UpdatedAt    time.Time `json:"updatedAt"`
	Revision     uint64    `json:"revision"` // the order's last revision the read model applied
}

func listJSON(o projections.OrderSummary) listOutput {
	return listOutput{
		ID: o.OrderID, Status: o.Status, Customer: o.Customer, Total: o.Total, Currency: o.Currency,
		LineCount: o.Lines, PaymentRef: o.PaymentRef, PaidAmount: o.PaidAmount, PlacedAt: o.PlacedAt,
		PaidAt: o.PaidAt, ShippedAt: o.ShippedAt, CancelledAt: o.CancelledAt, CancelReason: o.CancelReason,
		UpdatedAt: o.UpdatedAt, Revision: o.AppliedRevision,
	}
}

func (a *app) projectionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "projections status|rebuild|verify",
		Short: "Inspect and rebuild the read models",
		Args:  cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown projections command %q (want status, rebuild or verify)", args[0])
			}
			return usageErrorf("missing projections command (want status, rebuild or verify)")
		},
	}
	cmd.AddCommand(a.projectionsStatusCmd(), a.projectionsRebuildCmd(), a.projectionsVerifyCmd())
	return cmd
}

func (a *app) projectionsStatusCmd() *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "status [--data DIR | --db URL] [--json]",
		Short: "Show each projection's position, the head of the log, the lag in events and the time since the last applied event",
		Long: "status reads each projection's checkpoint and counts the log.\n\n" +
			"POSITION  the position in $all of the last event the projection applied\n" +
			"HEAD      the position of the last record of $all (any stream, system records included),\n" +
			"          the same figure as \"Head\" on the node's subscription pages and \"head\" in /status\n" +
			"LAG       order events in the log not yet applied: 0 when the projection is caught up\n" +
			"          (the node's pages call what a group still has to deliver \"Behind\")",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
			defer cancel()
			s, client, closeAll, err := a.openStoreAndLog(ctx, db)
			if err != nil {
				return err
			}
			defer closeAll()
			if _, err := s.CountLog(ctx, client); err != nil {
				return &unreachableError{addr: eventstore.Address(a.esdbURL), err: err}
			}
			st, err := s.Status(ctx)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(struct {
					Projections []projections.ProjectionStatus `json:"projections"`
				}{st})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROJECTION\tPOSITION\tHEAD\tAPPLIED\tLOG EVENTS\tLAG\tLAST APPLIED")
			for _, p := range st {
				last := "never"
				if !p.LastAppliedAt.IsZero() {
					last = p.SinceLastApplied.Round(time.Second).String() + " ago"
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", p.Name, p.Position, p.HeadPosition, p.EventsApplied, p.LogEvents, p.Lag, last)
			}
			return tw.Flush()
		},
	}
	a.dbFlag(cmd, &db)
	return cmd
}

func (a *app) projectionsRebuildCmd() *cobra.Command {
	var db string
	var all bool
	cmd := &cobra.Command{
		Use:   "rebuild NAME|--all [--data DIR | --db URL]",
		Short: "Replay the log from position zero into fresh tables and swap them in when caught up",
		Long: "rebuild replays $all from position zero into shadow tables while the live tables keep serving,\n" +
			"then swaps them in atomically. Projections: " + strings.Join(projections.Names(), ", ") + ".",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := projectionArgs(all, args)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, client, closeAll, err := a.openStoreAndLog(ctx, db)
			if err != nil {
				return err
			}
			defer closeAll()
			var pr *progressPrinter
			if !a.jsonOut {
				pr = newProgressPrinter(a.stderr, a.now) // progress is not the result: stderr
			}
			res, err := s.Rebuild(ctx, client, names, pr.print)
			pr.finish()
			if err != nil {
				return a.logError(err)
			}
			if a.jsonOut {
				return a.printJSON(res)
			}
			_, err = fmt.Fprintf(a.stdout, "rebuilt %s: %d events read, %d order events applied, in %s\n",
				strings.Join(res.Projections, ", "), res.Read, res.EventsApplied, res.Elapsed.Round(time.Millisecond))
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "rebuild every projection")
	a.dbFlag(cmd, &db)
	return cmd
}

// openStoreAndLog opens the read models and a client of the log; closeAll closes both.
func (a *app) openStoreAndLog(ctx context.Context, db string) (*projections.Store, *esdb.Client, func(), error) {
	s, err := a.openStore(ctx, db)
	if err != nil {
		return nil, nil, nil, err
	}
	client, err := eventstore.Connect(a.esdbURL)
	if err != nil {
		_ = s.Close()
		return nil, nil, nil, err
	}
	return s, client, func() { _ = client.Close(); _ = s.Close() }, nil
}

// logError makes a failed read of the log say which node could not be read.
func (a *app) logError(err error) error {
	if errors.Is(err, projections.ErrLog) {
		return &unreachableError{addr: eventstore.Address(a.esdbURL), err: err}
	}
	return err
}

// projectionArgs is the NAME|--all argument of rebuild and verify.
func projectionArgs(all bool, args []string) ([]string, error) {
	switch {
	case all && len(args) == 0:
		return projections.Names(), nil
	case !all && len(args) == 1:
		if !contains(projections.Names(), args[0]) {
			return nil, usageErrorf("unknown projection %q (want one of %s, or --all)", args[0], strings.Join(projections.Names(), ", "))
		}
		return args, nil
	}
	return nil, usageErrorf("want one projection name or --all")
}

func (a *app) projectionsVerifyCmd() *cobra.Command {
	var db string
	var all bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "verify NAME|--all [--db URL] [--wait D]",
		Short: "Compare every row of the read models with an independent replay of the log",
		Long: "verify reads $all to its end and folds every order with the aggregate alone, waits until the\n" +
			"projections have applied every event read (serve may keep running), then compares every row of\n" +
			"their tables with what the replay gives and prints the rows that differ. Exit status 1 if any row\n" +
			"differs, 0 if all are equal. Projections: " + strings.Join(projections.Names(), ", ") + ".",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := projectionArgs(all, args)
			if err != nil {
				return err
			}
			if wait <= 0 {
				return usageErrorf("bad --wait %v: must be positive", wait)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, client, closeAll, err := a.openStoreAndLog(ctx, db)
			if err != nil {
				return err
			}
			defer closeAll()
			var pr *progressPrinter
			if !a.jsonOut {
				pr = newProgressPrinter(a.stderr, a.now)
			}
			rep, err := verify.Run(ctx, s, client, verify.Config{Projections: names, Wait: wait, Progress: pr.verify})
			pr.finish()
			if err != nil {
				return a.logError(err)
			}
			if a.jsonOut {
				if err := a.printJSON(rep); err != nil {
					return err
				}
			} else {
				for _, d := range rep.Differences {
					fmt.Fprintln(a.stdout, d)
				}
				for _, r := range rep.Refused {
					fmt.Fprintln(a.stdout, "refused by the aggregate: "+r)
				}
			}
			if n := len(rep.Differences) + len(rep.Refused); n > 0 {
				return fmt.Errorf("verify %s: %d row(s) differ from a replay of the log up to position %d", strings.Join(names, ", "), n, rep.Position)
			}
			if !a.jsonOut {
				rows := 0
				for _, n := range rep.Rows {
					rows += n
				}
				_, err = fmt.Fprintf(a.stdout, "verified %s: %d rows equal a replay of %d order events (%d orders) up to position %d\n",
					strings.Join(names, ", "), rows, rep.OrderEvents, rep.Orders, rep.Position)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "verify every projection")
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "longest wait for the projections to apply what was read")
	a.dbFlag(cmd, &db)
	return cmd
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// progressPrinter draws rebuild progress: one updating line on a terminal, plain lines
// (at most one a second) otherwise.
type progressPrinter struct {
	w     io.Writer
	tty   bool
	now   func() time.Time
	last  time.Time
	drawn bool
}

func newProgressPrinter(w io.Writer, now func() time.Time) *progressPrinter {
	p := &progressPrinter{w: w, now: now}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progressPrinter) print(pr projections.Progress) {
	if p == nil {
		return
	}
	now := p.now()
	interval := time.Second
	if p.tty {
		interval = 100 * time.Millisecond
	}
	if pr.Phase == "replay" && now.Sub(p.last) < interval {
		return
	}
	p.last = now
	line := fmt.Sprintf("%s: %s %5.1f%%  %d events read, %d applied, position %d/%d, %.0f events/s",
		strings.Join(pr.Projections, ","), pr.Phase, 100*pr.Fraction(), pr.Read, pr.Applied, pr.Position, pr.HeadPosition, pr.Rate)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// verify draws a verification's progress, on a terminal only.
func (p *progressPrinter) verify(pr verify.Progress) {
	if p == nil || !p.tty {
		return
	}
	now := p.now()
	if pr.Phase == "read" && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	var line string
	switch pr.Phase {
	case "read":
		line = fmt.Sprintf("verify: replaying the log: %d order events, position %d", pr.Read, pr.Position)
	case "wait":
		line = fmt.Sprintf("verify: waiting for %s: %d of %d order events applied", pr.Projection, pr.Applied, pr.Read)
	default:
		line = fmt.Sprintf("verify: comparing %d order events up to position %d", pr.Read, pr.Position)
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *progressPrinter) finish() {
	if p != nil && p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}
