package projections_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/internal/testutil/pgtest"
	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/subscribers"
)

func postgresURL() string { return pgtest.URL() }

// backend makes database URLs of one kind for tests.
type backend struct {
	name   string
	newURL func(t testing.TB) string
}

func backends() []backend {
	return []backend{
		{name: "sqlite", newURL: func(t testing.TB) string { return filepath.Join(t.TempDir(), "readmodels.db") }},
		{name: "postgres", newURL: newPostgresSchema},
	}
}

// newPostgresSchema is a fresh schema of the test PostgreSQL, dropped at cleanup.
func newPostgresSchema(t testing.TB) string { return pgtest.Schema(t) }

func openStore(t testing.TB, url string) *projections.Store {
	t.Helper()
	s, err := projections.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("open store %s: %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// modelTables are every table of the read models (not the bookkeeping).
var modelTables = []string{"order_summaries", "customer_orders_state", "customer_orders", "daily_revenue_state", "daily_revenue"}

// rawDB opens the database at url directly (no migration), for tests that look behind
// the store's back.
func rawDB(t testing.TB, url string) *sql.DB {
	t.Helper()
	driver, dsn := "sqlite", "file:"+url+"?_pragma=busy_timeout(30000)"
	if strings.HasPrefix(url, "postgres") {
		driver, dsn = "pgx", url
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// dump returns every read-model table as sorted rows of text, for row-by-row comparison
// across stores and dialects.
func dump(t testing.TB, url string) map[string][]string {
	t.Helper()
	s := openStore(t, url)
	snap, _, err := s.Snapshot(t.Context(), modelTables)
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	out := map[string][]string{}
	for table, rows := range snap {
		var lines []string
		for _, r := range rows {
			parts := make([]string, 0, len(r))
			for _, c := range slices.Sorted(maps.Keys(r)) {
				parts = append(parts, c+"="+r[c])
			}
			lines = append(lines, strings.Join(parts, " "))
		}
		slices.Sort(lines)
		out[table] = lines
	}
	return out
}

// compareDumps reports every difference between two dumps.
func compareDumps(t testing.TB, wantName string, want map[string][]string, gotName string, got map[string][]string) {
	t.Helper()
	for _, table := range modelTables {
		w, g := want[table], got[table]
		if slices.Equal(w, g) {
			continue
		}
		t.Errorf("table %s differs: %s has %d rows, %s has %d", table, wantName, len(w), gotName, len(g))
		shown := 0
		for i := 0; i < max(len(w), len(g)) && shown < 5; i++ {
			var a, b string
			if i < len(w) {
				a = w[i]
			}
			if i < len(g) {
				b = g[i]
			}
			if a != b {
				t.Errorf("  row %d:\n    %s: %s\n    %s: %s", i, wantName, a, gotName, b)
				shown++
			}
		}
	}
}

// workload is a synthetic log of order events (what $all would hold), with an oracle.
type workload struct {
	events []subscribers.Event
}

// genWorkload makes n orders over a few customers and currencies, interleaved at random.
func genWorkload(t testing.TB, rng *mrand.Rand, n int) workload {
	t.Helper()
	customers := []string{"ann@example.com", "bob@example.com", "cy@example.com", "dee@example.com"}
	currencies := []string{"EUR", "USD"}
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var perOrder [][]aggregate.Event
	for i := range n {
		id := uuid.NewString()
		placedAt := base.Add(time.Duration(rng.IntN(72*60)) * time.Minute)
		qty, price := int64(1+rng.IntN(3)), int64(100+rng.IntN(5000))
		evs := []aggregate.Event{aggregate.OrderPlaced{
			OrderID: id, Customer: customers[rng.IntN(len(customers))], Currency: currencies[i%len(currencies)],
			Lines: []aggregate.Line{{SKU: "sku-1", Quantity: qty, UnitPrice: price}}, Total: qty * price, PlacedAt: placedAt,
		}}
		switch r := rng.IntN(10); {
		case r < 2: // placed only
		case r < 4:
			evs = append(evs, aggregate.OrderCancelled{OrderID: id, Reason: "changed mind", CancelledAt: placedAt.Add(time.Hour)})
		default:
			paidAt := placedAt.Add(time.Duration(rng.IntN(30*60)) * time.Minute)
			evs = append(evs, aggregate.OrderPaid{OrderID: id, PaymentRef: "pay-" + id[:8], Amount: qty * price, Currency: currencies[i%len(currencies)], PaidAt: paidAt})
			switch rng.IntN(3) {
			case 0:
				evs = append(evs, aggregate.OrderShipped{OrderID: id, ShippedAt: paidAt.Add(time.Hour)})
			case 1:
				evs = append(evs, aggregate.OrderCancelled{OrderID: id, CancelledAt: paidAt.Add(2 * time.Hour)})
			}
		}
		perOrder = append(perOrder, evs)
	}
	// Interleave: pick a random order with events left, take its next event.
	next := make([]int, n)
	var w workload
	left := n
	for left > 0 {
		i := rng.IntN(n)
		if next[i] >= len(perOrder[i]) {
			continue
		}
		e := perOrder[i][next[i]]
		data, err := aggregate.EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		id := perOrder[i][0].(aggregate.OrderPlaced).OrderID
		w.events = append(w.events, subscribers.Event{
			AckID: uuid.New(), ID: uuid.New(), Stream: eventstore.StreamName(id), Revision: uint64(next[i]),
			Position: uint64(len(w.events) + 1), Type: e.EventType(), Data: data, Metadata: []byte("{}"),
		})
		next[i]++
		if next[i] == len(perOrder[i]) {
			left--
		}
	}
	return w
}

// oracle folds the workload in log order, in plain Go, into what the models must hold.
type oracle struct {
	orders    map[string]projections.OrderSummary
	customers map[[2]string]projections.CustomerTotals
	revenue   map[[2]string]projections.Revenue
}

func (w workload) oracle(t testing.TB) oracle {
	t.Helper()
	o := oracle{orders: map[string]projections.OrderSummary{}, customers: map[[2]string]projections.CustomerTotals{}, revenue: map[[2]string]projections.Revenue{}}
	for _, ev := range w.events {
		e, err := aggregate.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		id := strings.TrimPrefix(ev.Stream, eventstore.StreamPrefix)
		s := o.orders[id]
		s.AppliedRevision, s.AppliedPosition = ev.Revision, ev.Position
		key := [2]string{s.Customer, s.Currency}
		c := o.customers[key]
		switch e := e.(type) {
		case aggregate.OrderPlaced:
			s = projections.OrderSummary{OrderID: id, Customer: e.Customer, Status: "placed", Currency: e.Currency, Total: e.Total,
				Lines: int64(len(e.Lines)), PlacedAt: e.PlacedAt, UpdatedAt: e.PlacedAt, AppliedRevision: ev.Revision, AppliedPosition: ev.Position}
			key = [2]string{e.Customer, e.Currency}
			c = o.customers[key]
			c.Customer, c.Currency = e.Customer, e.Currency
			c.Orders++
			c.OrderedAmount += e.Total
		case aggregate.OrderPaid:
			s.Status, s.PaymentRef, s.PaidAmount, s.PaidAt, s.UpdatedAt = "paid", e.PaymentRef, e.Amount, e.PaidAt, e.PaidAt
			c.PaidOrders++
			c.PaidAmount += e.Amount
			rk := [2]string{e.PaidAt.UTC().Format("2006-01-02"), e.Currency}
			r := o.revenue[rk]
			r.Day, r.Currency = rk[0], rk[1]
			r.Payments++
			r.Amount += e.Amount
			o.revenue[rk] = r
		case aggregate.OrderShipped:
			s.Status, s.ShippedAt, s.UpdatedAt = "shipped", e.ShippedAt, e.ShippedAt
			c.ShippedOrders++
		case aggregate.OrderCancelled:
			s.Status, s.CancelledAt, s.CancelReason, s.UpdatedAt = "cancelled", e.CancelledAt, e.Reason, e.CancelledAt
			c.CancelledOrders++
		}
		o.orders[id] = s
		o.customers[key] = c
	}
	return o
}

// check compares the store's models with the oracle.
func (o oracle) check(t testing.TB, s *projections.Store) {
	t.Helper()
	ctx := t.Context()
	list, err := s.ListOrders(ctx, projections.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(o.orders) {
		t.Errorf("order_summaries: %d rows, want %d", len(list), len(o.orders))
	}
	for _, got := range list {
		want := o.orders[got.OrderID]
		if !jsonEqual(got, want) {
			t.Errorf("order %s:\n got %+v\nwant %+v", got.OrderID, got, want)
		}
	}
	cs, err := s.Customers(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != len(o.customers) {
		t.Errorf("customer_orders: %d rows, want %d", len(cs), len(o.customers))
	}
	for _, got := range cs {
		if want := o.customers[[2]string{got.Customer, got.Currency}]; got != want {
			t.Errorf("customer %s %s:\n got %+v\nwant %+v", got.Customer, got.Currency, got, want)
		}
	}
	rs, err := s.DailyRevenue(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(o.revenue) {
		t.Errorf("daily_revenue: %d rows, want %d", len(rs), len(o.revenue))
	}
	for _, got := range rs {
		if want := o.revenue[[2]string{got.Day, got.Currency}]; got != want {
			t.Errorf("revenue %s %s: got %+v, want %+v", got.Day, got.Currency, got, want)
		}
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func seed(t testing.TB) uint64 {
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("PROJ_SEED"); v != "" {
		_, _ = fmt.Sscan(v, &s)
	}
	t.Logf("seed %d (PROJ_SEED=%d to repeat)", s, s)
	return s
}

// secondaryIndexes lists the secondary indexes of the read-model tables at url as
// "table(col,col)", sorted: a rebuild must leave the same ones as the migrations.
func secondaryIndexes(t testing.TB, url string) []string {
	t.Helper()
	db := rawDB(t, url)
	q := `SELECT m.tbl_name, il.name, ii.name FROM sqlite_master m, pragma_index_list(m.tbl_name) il,
	pragma_index_info(il.name) ii WHERE m.type = 'table' AND il.origin = 'c' ORDER BY 1, 2, ii.seqno`
	if strings.HasPrefix(url, "postgres") {
		q = `SELECT c.relname, ic.relname, a.attname FROM pg_index i
	JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
	JOIN pg_namespace ns ON ns.oid = c.relnamespace
	CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
	WHERE ns.nspname = current_schema() AND NOT i.indisprimary ORDER BY 1, 2, k.n`
	}
	rows, err := db.QueryContext(t.Context(), q)
	if err != nil {
		t.Fatalf("indexes of %s: %v", url, err)
	}
	defer rows.Close()
	cols := map[[2]string][]string{}
	for rows.Next() {
		var table, index, col string
		if err := rows.Scan(&table, &index, &col); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(modelTables, table) {
			cols[[2]string{table, index}] = append(cols[[2]string{table, index}], col)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k, c := range cols {
		out = append(out, k[0]+"("+strings.Join(c, ",")+")")
	}
	slices.Sort(out)
	return out
}
