package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/internal/testutil/pgtest"
	"github.com/orderstore/orders/projections"
)

// servePGTables are every read-model table (not the bookkeeping), as projections/helpers_test.go
// compares them: every column is derived from the events, so nothing is ignored.
var servePGTables = []string{"order_summaries", "customer_orders_state", "customer_orders", "daily_revenue_state", "daily_revenue"}

// servePGSchema is a fresh schema of the test PostgreSQL, dropped at cleanup.
func servePGSchema(t *testing.T) string { return pgtest.Schema(t) }

// servePGDump returns every read-model table as sorted rows of text.
func servePGDump(t *testing.T, url string) map[string][]string {
	t.Helper()
	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	defer db.Close()
	out := map[string][]string{}
	for _, table := range servePGTables {
		rows, err := db.QueryContext(t.Context(), "SELECT * FROM "+table)
		require.NoError(t, err, table)
		cols, err := rows.Columns()
		require.NoError(t, err)
		var lines []string
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...), table)
			parts := make([]string, len(cols))
			for i, v := range vals {
				parts[i] = cols[i] + "=NULL"
				if v.Valid {
					parts[i] = cols[i] + "=" + v.String
				}
			}
			lines = append(lines, strings.Join(parts, " "))
		}
		require.NoError(t, rows.Err(), table)
		rows.Close()
		slices.Sort(lines)
		out[table] = lines
	}
	return out
}

// servePGWorkload is what the workload knows it did: per order, per customer and currency,
// and per payment day and currency.
type servePGWorkload struct {
	mu        sync.Mutex
	orders    map[string]projections.OrderSummary // OrderID, Customer, Status, Currency, Total, PaidAmount
	customers map[[2]string]projections.CustomerTotals
	revenue   map[[2]string]projections.Revenue
	commands  int
}

func (w *servePGWorkload) record(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.commands++
	f()
}

// startServePG starts `orders serve` on the external node and the shared database, and
// returns it with its HTTP address (read from its log).
func startServePG(t *testing.T, esdbURL, db, dir string) (*daemon, string) {
	t.Helper()
	d := startDaemon(t, "serve", "--esdb", esdbURL, "--db", db, "--data", dir, "--http", "127.0.0.1:0")
	require.Equal(t, esdbURL, d.url)
	return d, d.httpAddr(t)
}

// TestTwoServeProcessesOnPostgresTotalsExact: two `orders serve` processes share one node and
// one PostgreSQL schema while orders are placed, paid, shipped and cancelled concurrently, and
// one of them is SIGKILLed and restarted at random moments. Once `orders projections status`
// reports lag 0 for every projection, every read-model table equals, row by row, a rebuild from
// zero into a second schema, and the totals equal what the workload knows it did.
func TestTwoServeProcessesOnPostgresTotalsExact(t *testing.T) {
	const (
		nOrders = 60
		workers = 4
	)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SERVE_PG_SEED"); v != "" {
		_, err := fmt.Sscan(v, &seed)
		require.NoError(t, err)
	}
	t.Logf("seed %d (SERVE_PG_SEED=%d to repeat the schedule)", seed, seed)
	rng := mrand.New(mrand.NewPCG(seed, 1))

	n := startNode(t)
	db := servePGSchema(t)
	live, err := projections.Open(t.Context(), db) // migrates before the serve processes start
	require.NoError(t, err)
	t.Cleanup(func() { _ = live.Close() })

	dirs := []string{t.TempDir(), t.TempDir()}
	serves := make([]*daemon, 2)
	for i := range serves {
		serves[i], _ = startServePG(t, n.url, db, dirs[i])
	}

	// The workload's plan, drawn from the seed before anything runs.
	type plan struct {
		id, customer, currency string
		qty, price             int64
		steps                  []string
	}
	currencies := []string{"EUR", "USD"}
	plans := make([]plan, nOrders)
	for i := range plans {
		p := plan{id: uuid.NewString(), customer: fmt.Sprintf("c%d@example.com", rng.IntN(5)),
			currency: currencies[rng.IntN(len(currencies))], qty: int64(1 + rng.IntN(3)), price: int64(100 + rng.IntN(5000))}
		switch r := rng.IntN(10); {
		case r < 1: // placed only
		case r < 2:
			p.steps = []string{"cancel"}
		case r < 6:
			p.steps = []string{"pay"}
		case r < 9:
			p.steps = []string{"pay", "ship"}
		default:
			p.steps = []string{"pay", "cancel"}
		}
		plans[i] = p
	}
	thinkSeeds := make([]uint64, workers)
	for w := range thinkSeeds {
		thinkSeeds[w] = rng.Uint64()
	}

	repo, err := eventstore.NewRepository(n.client, eventstore.RepositoryConfig{MaxAttempts: 20})
	require.NoError(t, err)
	wl := &servePGWorkload{orders: map[string]projections.OrderSummary{},
		customers: map[[2]string]projections.CustomerTotals{}, revenue: map[[2]string]projections.Revenue{}}
	ctx := t.Context()
	execute := func(id string, decide func(*aggregate.Order) error) error {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		_, err := repo.Execute(cctx, id, eventstore.CommandMetadata(uuid.NewString(), "serve-pg-test"), decide)
		return err
	}
	runPlan := func(p plan) error {
		total := p.qty * p.price
		if err := execute(p.id, func(o *aggregate.Order) error {
			return o.Place(aggregate.PlaceOrder{Customer: p.customer, Currency: p.currency,
				Lines: []aggregate.Line{{SKU: "sku-1", Quantity: p.qty, UnitPrice: p.price}}}, time.Now())
		}); err != nil {
			return fmt.Errorf("place %s: %w", p.id, err)
		}
		key := [2]string{p.customer, p.currency}
		wl.record(func() {
			wl.orders[p.id] = projections.OrderSummary{OrderID: p.id, Customer: p.customer, Status: "placed", Currency: p.currency, Total: total}
			c := wl.customers[key]
			c.Customer, c.Currency = p.customer, p.currency
			c.Orders++
			c.OrderedAmount += total
			wl.customers[key] = c
		})
		for _, step := range p.steps {
			var at time.Time
			var err error
			switch step {
			case "pay":
				err = execute(p.id, func(o *aggregate.Order) error {
					at = time.Now().UTC()
					return o.Pay("ref-"+p.id[:8], total, at)
				})
			case "ship":
				err = execute(p.id, func(o *aggregate.Order) error { return o.Ship(time.Now()) })
			case "cancel":
				err = execute(p.id, func(o *aggregate.Order) error { return o.Cancel("changed mind", time.Now()) })
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", step, p.id, err)
			}
			wl.record(func() {
				o, c := wl.orders[p.id], wl.customers[key]
				switch step {
				case "pay":
					o.Status, o.PaidAmount = "paid", total
					c.PaidOrders++
					c.PaidAmount += total
					rk := [2]string{at.Format("2006-01-02"), p.currency}
					r := wl.revenue[rk]
					r.Day, r.Currency = rk[0], rk[1]
					r.Payments++
					r.Amount += total
					wl.revenue[rk] = r
				case "ship":
					o.Status = "shipped"
					c.ShippedOrders++
				case "cancel":
					o.Status = "cancelled"
					c.CancelledOrders++
				}
				wl.orders[p.id], wl.customers[key] = o, c
			})
		}
		return nil
	}

	// The workload: workers goroutines take the plans in turn, with a seeded think time
	// between orders so that the commands span the kill schedule.
	var (
		wg      sync.WaitGroup
		nextMu  sync.Mutex
		next    int
		errMu   sync.Mutex
		errs    []error
		running = make(chan struct{})
	)
	for w := range workers {
		think := mrand.New(mrand.NewPCG(thinkSeeds[w], 2))
		wg.Go(func() {
			for {
				nextMu.Lock()
				i := next
				next++
				nextMu.Unlock()
				if i >= len(plans) || ctx.Err() != nil {
					return
				}
				if err := runPlan(plans[i]); err != nil {
					errMu.Lock()
					errs = append(errs, err)
					errMu.Unlock()
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Duration(60+think.IntN(200)) * time.Millisecond): // workload think time, not synchronisation
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(running)
	}()

	// The fault schedule: every 150-500 ms SIGKILL one of the two serve processes and start
	// it again on the same data directory, database and node.
	wantKills := 6 + rng.IntN(5)
	kills, killsDuringWorkload := 0, 0
	for kills < wantKills {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Duration(150+rng.IntN(350)) * time.Millisecond): // fault schedule, not synchronisation
		}
		i := rng.IntN(len(serves))
		require.NoError(t, serves[i].cmd.Process.Signal(syscall.SIGKILL))
		_ = serves[i].cmd.Wait()
		select {
		case <-running:
		default:
			killsDuringWorkload++
		}
		kills++
		serves[i], _ = startServePG(t, n.url, db, dirs[i])
	}
	<-running
	require.Empty(t, errs, "workload errors")
	t.Logf("%d orders, %d commands; %d SIGKILLs of a serve process (%d while the workload ran)",
		len(wl.orders), wl.commands, kills, killsDuringWorkload)

	// Both processes keep running until `orders projections status` reports lag 0 everywhere.
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := lags(t, n.url, db)
		if l[projections.OrderSummaries] == 0 && l[projections.CustomerOrders] == 0 && l[projections.DailyRevenue] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("projections not caught up after 30s: lags %v", l)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond): // polling the status: no event to wait on
		}
	}
	for i, d := range serves {
		require.Nil(t, d.cmd.ProcessState, "serve %d exited: %s", i, d.stderr)
	}
	st, err := live.Status(ctx)
	require.NoError(t, err)
	for _, s := range st {
		t.Logf("%s: %d events applied of %d, lag %d", s.Name, s.EventsApplied, s.LogEvents, s.Lag)
	}

	// Rebuild from zero into a second fresh schema, over the same node.
	fresh := servePGSchema(t)
	rebuilt, err := projections.Open(ctx, fresh)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rebuilt.Close() })
	res, err := rebuilt.Rebuild(ctx, n.client, nil, nil)
	require.NoError(t, err)
	require.ElementsMatch(t, projections.Names(), res.Projections)
	for _, s := range st {
		require.Equal(t, res.EventsApplied, s.EventsApplied, "events applied by %s: rebuild vs live", s.Name)
	}

	// Row by row: the live tables equal the rebuild.
	want, got := servePGDump(t, fresh), servePGDump(t, db)
	for _, table := range servePGTables {
		require.NotEmpty(t, want[table], "rebuilt %s is empty", table)
		require.Equal(t, want[table], got[table], "table %s: rebuild from zero (expected) vs live under kills (actual)", table)
	}

	// The totals: what the workload knows it placed, paid, shipped and cancelled.
	orders, err := live.ListOrders(ctx, projections.ListFilter{})
	require.NoError(t, err)
	require.Len(t, orders, nOrders)
	for _, o := range orders {
		w, found := wl.orders[o.OrderID]
		require.True(t, found, "unknown order %s", o.OrderID)
		require.Equal(t, w, projections.OrderSummary{OrderID: o.OrderID, Customer: o.Customer, Status: o.Status,
			Currency: o.Currency, Total: o.Total, PaidAmount: o.PaidAmount}, "order %s", o.OrderID)
	}
	customers, err := live.Customers(ctx, "")
	require.NoError(t, err)
	require.Len(t, customers, len(wl.customers))
	for _, c := range customers {
		require.Equal(t, wl.customers[[2]string{c.Customer, c.Currency}], c)
	}
	revenue, err := live.DailyRevenue(ctx, "", "")
	require.NoError(t, err)
	require.Len(t, revenue, len(wl.revenue))
	var paidLive, paidKnown, payments int64
	for _, r := range revenue {
		require.Equal(t, wl.revenue[[2]string{r.Day, r.Currency}], r)
		paidLive += r.Amount
	}
	for _, r := range wl.revenue {
		paidKnown += r.Amount
		payments += r.Payments
	}
	require.Positive(t, paidKnown)
	require.Equal(t, paidKnown, paidLive, "sum of daily revenue vs what the workload paid")
	t.Logf("paid in total %d (minor units, all currencies) in %d payments", paidKnown, payments)

	// Both processes serve their HTTP status with lag 0, then stop cleanly.
	for i := range serves {
		require.Nil(t, serves[i].cmd.ProcessState, "serve %d exited: %s", i, serves[i].stderr)
		resp, err := http.Get("http://" + serves[i].httpAddr(t) + "/status")
		require.NoError(t, err)
		var web struct {
			Projections []projections.LiveStatus `json:"projections"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&web))
		resp.Body.Close()
		require.Len(t, web.Projections, 3)
		for _, p := range web.Projections {
			require.EqualValues(t, 0, p.Lag, "serve %d: %s", i, p.Name)
		}
	}
	for i, d := range serves {
		require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "serve %d stderr: %s", i, d.stderr)
	}
}
