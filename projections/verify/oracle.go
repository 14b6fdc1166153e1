// Package verify checks the read models against an independent replay of the log.
//
// # Contract
//
// The Oracle folds every order stream with the aggregate package alone (aggregate.Order,
// no code of package projections' apply path) and computes from the folded orders every
// row the three read models must hold: order_summaries, customer_orders_state,
// customer_orders, daily_revenue_state and daily_revenue, as the text the databases hold
// (fixed-width UTC times, integers in decimal, NULL absent). Events of a type the
// aggregate does not know advance the order's revision and position and nothing else, as
// projections documents. A stream the aggregate refuses (an event that cannot follow the
// ones before it) is reported, not guessed at.
//
// Run reads $all up to its end, waits until each projection has applied as many order
// events as it read, takes a consistent snapshot of the projection's tables, folds again
// from the log the orders whose rows are at another revision than the replay (events
// appended meanwhile), and reports every row that differs. It holds one folded order per
// order stream in memory.
package verify

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
)

// timeFormat and dayFormat are the read models' documented text formats.
const (
	timeFormat = "2006-01-02T15:04:05.000000Z"
	dayFormat  = "2006-01-02"
)

// Order is one order stream folded by the aggregate, with what the read models record
// beside the aggregate's state.
type Order struct {
	ID        string
	Agg       *aggregate.Order
	Revision  int64  // last event folded, -1 none
	Position  uint64 // $all position of the last event folded
	UpdatedAt time.Time
	Paid      *aggregate.OrderPaid // the payment, if any
	Err       error                // the aggregate refused the stream
}

// NewOrder is an order with no events folded.
func NewOrder(id string) *Order { return &Order{ID: id, Agg: aggregate.New(id), Revision: -1} }

// Fold folds the order's next event. Events at or below Revision are ignored.
func (o *Order) Fold(revision, position uint64, eventType string, data []byte) {
	if o.Err != nil || int64(revision) <= o.Revision {
		return
	}
	if int64(revision) != o.Revision+1 {
		o.Err = fmt.Errorf("revision %d after %d", revision, o.Revision)
		return
	}
	o.Revision, o.Position = int64(revision), position
	e, err := aggregate.DecodeEvent(eventType, data)
	if errors.Is(err, aggregate.ErrUnknownEventType) {
		return
	}
	if err != nil {
		o.Err = err
		return
	}
	if err := o.Agg.Apply(e); err != nil {
		o.Err = err
		return
	}
	switch e := e.(type) {
	case aggregate.OrderPlaced:
		o.UpdatedAt = e.PlacedAt
	case aggregate.OrderPaid:
		o.UpdatedAt, o.Paid = e.PaidAt, &e
	case aggregate.OrderShipped:
		o.UpdatedAt = e.ShippedAt
	case aggregate.OrderCancelled:
		o.UpdatedAt = e.CancelledAt
	}
}

func ftime(t time.Time) string { return t.UTC().Format(timeFormat) }
func fint[T int64 | uint64 | int](v T) string {
	return strconv.FormatInt(int64(v), 10)
}

// Row is a table row as text, NULL absent (as projections.Row).
type Row = map[string]string

// Key identifies a row within its table: its primary key columns' values joined by "/".
func Key(table string, r Row) string {
	switch table {
	case "customer_orders":
		return r["customer"] + "/" + r["currency"]
	case "daily_revenue":
		return r["day"] + "/" + r["currency"]
	}
	return r["order_id"]
}

// Expected computes the rows of table from the folded orders. Orders the aggregate refused
// are left out (Run reports them).
func Expected(table string, orders []*Order) (map[string]Row, error) {
	out := map[string]Row{}
	add := func(r Row) { out[Key(table, r)] = r }
	sums := map[string][]int64{}
	addSum := func(k0, k1 string, d ...int64) {
		k := k0 + "\x00" + k1
		s := sums[k]
		if s == nil {
			s = make([]int64, len(d))
			sums[k] = s
		}
		for i := range d {
			s[i] += d[i]
		}
	}
	for _, o := range orders {
		if o.Err != nil || o.Revision < 0 {
			continue
		}
		a := o.Agg
		placed := a.Status() != aggregate.StatusNone
		switch table {
		case "order_summaries":
			if !placed {
				continue
			}
			r := Row{"order_id": o.ID, "customer": a.Customer(), "status": string(a.Status()), "currency": a.Currency(),
				"total": fint(a.Total()), "line_count": fint(len(a.Lines())), "payment_ref": a.PaymentRef(), "paid_amount": "0",
				"placed_at": ftime(a.PlacedAt()), "cancel_reason": a.CancelReason(), "updated_at": ftime(o.UpdatedAt),
				"applied_revision": fint(o.Revision), "applied_position": fint(o.Position)}
			if o.Paid != nil {
				r["paid_amount"] = fint(o.Paid.Amount)
			}
			for col, t := range map[string]time.Time{"paid_at": a.PaidAt(), "shipped_at": a.ShippedAt(), "cancelled_at": a.CancelledAt()} {
				if !t.IsZero() {
					r[col] = ftime(t)
				}
			}
			add(r)
		case "customer_orders_state":
			if placed {
				add(Row{"order_id": o.ID, "customer": a.Customer(), "currency": a.Currency(), "applied_revision": fint(o.Revision)})
			}
		case "daily_revenue_state":
			if placed {
				add(Row{"order_id": o.ID, "applied_revision": fint(o.Revision)})
			}
		case "customer_orders":
			if !placed {
				continue
			}
			var paid, paidAmount, shipped, cancelled int64
			if o.Paid != nil {
				paid, paidAmount = 1, o.Paid.Amount
			}
			if !a.ShippedAt().IsZero() {
				shipped = 1
			}
			if !a.CancelledAt().IsZero() {
				cancelled = 1
			}
			addSum(a.Customer(), a.Currency(), 1, paid, shipped, cancelled, a.Total(), paidAmount)
		case "daily_revenue":
			if o.Paid != nil {
				addSum(o.Paid.PaidAt.UTC().Format(dayFormat), o.Paid.Currency, 1, o.Paid.Amount)
			}
		default:
			return nil, fmt.Errorf("verify: unknown table %q", table)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(sums)) {
		k0, k1, _ := strings.Cut(k, "\x00")
		s := sums[k]
		switch table {
		case "customer_orders":
			add(Row{"customer": k0, "currency": k1, "orders": fint(s[0]), "paid_orders": fint(s[1]), "shipped_orders": fint(s[2]),
				"cancelled_orders": fint(s[3]), "ordered_amount": fint(s[4]), "paid_amount": fint(s[5])})
		case "daily_revenue":
			add(Row{"day": k0, "currency": k1, "payments": fint(s[0]), "amount": fint(s[1])})
		}
	}
	return out, nil
}

// Difference is a row that is not what the replay gives. Want or Got is nil when the row
// is missing on that side.
type Difference struct {
	Table string `json:"table"`
	Key   string `json:"key"`
	Want  Row    `json:"want,omitempty"`
	Got   Row    `json:"got,omitempty"`
}

// String renders the difference on one line, the differing columns only.
func (d Difference) String() string {
	switch {
	case d.Want == nil:
		return fmt.Sprintf("%s %s: unexpected row %s", d.Table, d.Key, formatRow(d.Got, nil))
	case d.Got == nil:
		return fmt.Sprintf("%s %s: missing row %s", d.Table, d.Key, formatRow(d.Want, nil))
	}
	var cols []string
	for _, c := range slices.Sorted(maps.Keys(union(d.Want, d.Got))) {
		w, wok := d.Want[c]
		g, gok := d.Got[c]
		if w != g || wok != gok {
			cols = append(cols, fmt.Sprintf("%s: got %s, want %s", c, show(g, gok), show(w, wok)))
		}
	}
	return fmt.Sprintf("%s %s: %s", d.Table, d.Key, strings.Join(cols, "; "))
}

func union(a, b Row) Row {
	u := maps.Clone(a)
	maps.Copy(u, b)
	return u
}

func show(v string, ok bool) string {
	if !ok {
		return "NULL"
	}
	return strconv.Quote(v)
}

func formatRow(r Row, _ []string) string {
	parts := make([]string, 0, len(r))
	for _, c := range slices.Sorted(maps.Keys(r)) {
		parts = append(parts, c+"="+strconv.Quote(r[c]))
	}
	return strings.Join(parts, " ")
}

// Compare returns the rows of got (a table's rows as read) that differ from want, and the
// rows of want that got lacks, in key order.
func Compare(table string, want map[string]Row, got []Row) []Difference {
	var out []Difference
	seen := map[string]bool{}
	for _, g := range got {
		k := Key(table, g)
		seen[k] = true
		w, ok := want[k]
		if !ok {
			out = append(out, Difference{Table: table, Key: k, Got: g})
			continue
		}
		if !maps.Equal(w, g) {
			out = append(out, Difference{Table: table, Key: k, Want: w, Got: g})
		}
	}
	for k, w := range want {
		if !seen[k] {
			out = append(out, Difference{Table: table, Key: k, Want: w})
		}
	}
	slices.SortFunc(out, func(a, b Difference) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// orderID is the order id of an order stream.
func orderID(stream string) (string, bool) {
	id, ok := strings.CutPrefix(stream, eventstore.StreamPrefix)
	return id, ok && id != ""
}
