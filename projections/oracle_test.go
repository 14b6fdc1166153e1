package projections_test

import (
	"testing"
	"time"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/projections/verify"
	"github.com/orderstore/orders/subscribers"
)

// checkOracle compares every row of every read-model table of s with the independent
// replay of package verify (the aggregate's fold, no projection code).
func checkOracle(t *testing.T, what string, s *projections.Store, dial subscribers.Dial) verify.Report {
	t.Helper()
	client, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	rep, err := verify.Run(t.Context(), s, client, verify.Config{Wait: time.Minute})
	if err != nil {
		t.Fatalf("%s: verify: %v", what, err)
	}
	for _, r := range rep.Refused {
		t.Errorf("%s: the aggregate refused a stream: %s", what, r)
	}
	for i, d := range rep.Differences {
		if i == 10 {
			t.Errorf("%s: ... %d differences in all", what, len(rep.Differences))
			break
		}
		t.Errorf("%s: %s", what, d)
	}
	t.Logf("%s: oracle compared %d orders, rows %v, %d differences", what, rep.Orders, rep.Rows, len(rep.Differences))
	return rep
}

// TestOracleCatchesDifferences: the oracle finds every row a tampered database gets
// wrong, on both databases, so that its "no difference" after the fault test means
// something.
func TestOracleCatchesDifferences(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			srv := esdbnodetest.Start(t)
			client := esdbnodetest.Client(t, srv)
			appendOrders(t.Context(), t, client, 90, 2)
			url := be.newURL(t)
			s := rebuildInto(t, url, dialer(srv.ConnectionString()))
			rep := checkOracle(t, "rebuilt", s, dialer(srv.ConnectionString()))
			if rep.Orders != 30 || rep.Rows["order_summaries"] != 30 || rep.Rows["daily_revenue"] == 0 {
				t.Fatalf("oracle saw %d orders, rows %v; want 30 orders", rep.Orders, rep.Rows)
			}

			db := rawDB(t, url)
			var victim string
			if err := db.QueryRowContext(t.Context(), "SELECT MIN(order_id) FROM order_summaries").Scan(&victim); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				"UPDATE order_summaries SET status = 'placed' WHERE order_id = '" + victim + "'",
				"UPDATE customer_orders SET paid_amount = paid_amount + 1 WHERE customer = 'c0@example.com'",
				"DELETE FROM daily_revenue_state WHERE order_id = '" + victim + "'",
			} {
				if _, err := db.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			rep, err := verify.Run(t.Context(), s, client, verify.Config{Wait: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range rep.Differences {
				got = append(got, d.Table+" "+d.Key)
			}
			want := []string{
				"order_summaries " + victim,
				"customer_orders c0@example.com/EUR",
				"daily_revenue_state " + victim,
			}
			if len(got) != len(want) {
				t.Errorf("reported %d differences, want %d", len(got), len(want))
			}
			for _, w := range want {
				found := false
				for _, g := range got {
					found = found || g == w
				}
				if !found {
					t.Errorf("difference %q not reported; reported %q", w, got)
				}
			}
			for _, d := range rep.Differences {
				t.Logf("reported: %s", d)
			}
		})
	}
}
