package projections

import (
	"database/sql"
	"fmt"
	"strings"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
)

// Projection names.
const (
	OrderSummaries = "order_summaries"
	CustomerOrders = "customer_orders"
	DailyRevenue   = "daily_revenue"
)

// Names returns the projection names, in a fixed order.
func Names() []string { return []string{OrderSummaries, CustomerOrders, DailyRevenue} }

// GroupName is the persistent subscription group of a projection: "projection-<name>".
func GroupName(name string) string { return "projection-" + name }

// event is what a projection applies: the parts of a recorded event it needs.
type event struct {
	Stream   string
	Revision uint64
	Position uint64
	Type     string
	Data     []byte
}

// tableSpec is one table owned by a projection. create returns the statements that create
// it, in the current schema, under the physical name t; gen makes constraint and index names
// unique, so that a shadow table renamed into place never collides with the next shadow's
// names. A projection lists its tables in the order its transactions write them (per-order
// state first), which is also the order a rebuild locks them in, so the two cannot deadlock.
type tableSpec struct {
	name   string
	create func(t, gen string) []string
}

// column is a column of a per-order state table: its name and SQL type ("text" or
// "bigint", the PostgreSQL array element type used for multi-row writes).
type column struct{ name, typ string }

// stateSpec is a projection's per-order table: one row per order, keyed by order_id, with
// the applied revision. cols lists every column, order_id first; get returns a row's
// values in that order and ptrs the scan destinations.
type stateSpec struct {
	table string
	cols  []column
	get   func(r *orderRow) []any
	ptrs  func(r *orderRow) []any
}

// totalsSpec is a projection's cross-order table: rows keyed by two text columns holding
// bigint counters that batches add deltas to. delta reports the change one applied event
// makes (ok false: none).
type totalsSpec struct {
	table string
	keys  [2]string
	vals  []string
	delta func(r *orderRow, e aggregate.Event) (key [2]string, d []int64, ok bool)
}

// projection is one read model: its tables, its per-order state and its totals.
type projection struct {
	name   string
	tables []tableSpec
	state  stateSpec
	totals *totalsSpec // nil: no cross-order table
}

var registry = map[string]*projection{
	OrderSummaries: orderSummaries(),
	CustomerOrders: customerOrders(),
	DailyRevenue:   dailyRevenue(),
}

func lookup(name string) (*projection, error) {
	p, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q (want one of %s)", ErrUnknownProjection, name, strings.Join(Names(), ", "))
	}
	return p, nil
}

// orderID returns the order id of an order stream, ok false for other streams.
func orderID(stream string) (string, bool) {
	id, ok := strings.CutPrefix(stream, eventstore.StreamPrefix)
	return id, ok && id != ""
}

// ---- order_summaries --------------------------------------------------------------------

func orderSummaries() *projection {
	return &projection{
		name: OrderSummaries,
		tables: []tableSpec{{name: "order_summaries", create: func(t, gen string) []string {
			return []string{
				`CREATE TABLE ` + t + ` (
	order_id TEXT NOT NULL,
	customer TEXT NOT NULL,
	status TEXT NOT NULL,
	currency TEXT NOT NULL,
	total BIGINT NOT NULL,
	line_count BIGINT NOT NULL,
	payment_ref TEXT NOT NULL DEFAULT '',
	paid_amount BIGINT NOT NULL DEFAULT 0,
	placed_at TEXT NOT NULL,
	paid_at TEXT,
	shipped_at TEXT,
	cancelled_at TEXT,
	cancel_reason TEXT NOT NULL DEFAULT '',
	updated_at TEXT NOT NULL,
	applied_revision BIGINT NOT NULL,
	applied_position BIGINT NOT NULL,
	CONSTRAINT ` + t + `_pk_` + gen + ` PRIMARY KEY (order_id))`,
				`CREATE INDEX ` + t + `_status_` + gen + ` ON ` + t + ` (status, placed_at)`,
				`CREATE INDEX ` + t + `_customer_` + gen + ` ON ` + t + ` (customer, placed_at)`,
			}
		}}},
		state: stateSpec{
			table: "order_summaries",
			cols: []column{{"order_id", "text"}, {"customer", "text"}, {"status", "text"}, {"currency", "text"},
				{"total", "bigint"}, {"line_count", "bigint"}, {"payment_ref", "text"}, {"paid_amount", "bigint"},
				{"placed_at", "text"}, {"paid_at", "text"}, {"shipped_at", "text"}, {"cancelled_at", "text"},
				{"cancel_reason", "text"}, {"updated_at", "text"}, {"applied_revision", "bigint"}, {"applied_position", "bigint"}},
			get: func(r *orderRow) []any {
				return []any{r.id, r.customer, r.status, r.currency, r.total, r.lines, r.paymentRef, r.paidAmount,
					r.placedAt, r.paidAt, r.shippedAt, r.cancelledAt, r.cancelReason, r.updatedAt, r.rev, r.pos}
			},
			ptrs: func(r *orderRow) []any {
				return []any{&r.id, &r.customer, &r.status, &r.currency, &r.total, &r.lines, &r.paymentRef, &r.paidAmount,
					&r.placedAt, &r.paidAt, &r.shippedAt, &r.cancelledAt, &r.cancelReason, &r.updatedAt, &r.rev, &r.pos}
			},
		},
	}
}

// ---- customer_orders --------------------------------------------------------------------

func customerOrders() *projection {
	return &projection{
		name: CustomerOrders,
		tables: []tableSpec{
			{name: "customer_orders_state", create: func(t, gen string) []string {
				return []string{`CREATE TABLE ` + t + ` (
	order_id TEXT NOT NULL,
	customer TEXT NOT NULL,
	currency TEXT NOT NULL,
	applied_revision BIGINT NOT NULL,
	CONSTRAINT ` + t + `_pk_` + gen + ` PRIMARY KEY (order_id))`}
			}},
			{name: "customer_orders", create: func(t, gen string) []string {
				return []string{`CREATE TABLE ` + t + ` (
	customer TEXT NOT NULL,
	currency TEXT NOT NULL,
	orders BIGINT NOT NULL,
	paid_orders BIGINT NOT NULL,
	shipped_orders BIGINT NOT NULL,
	cancelled_orders BIGINT NOT NULL,
	ordered_amount BIGINT NOT NULL,
	paid_amount BIGINT NOT NULL,
	CONSTRAINT ` + t + `_pk_` + gen + ` PRIMARY KEY (customer, currency))`}
			}},
		},
		state: stateSpec{
			table: "customer_orders_state",
			cols:  []column{{"order_id", "text"}, {"customer", "text"}, {"currency", "text"}, {"applied_revision", "bigint"}},
			get:   func(r *orderRow) []any { return []any{r.id, r.customer, r.currency, r.rev} },
			ptrs:  func(r *orderRow) []any { return []any{&r.id, &r.customer, &r.currency, &r.rev} },
		},
		totals: &totalsSpec{
			table: "customer_orders",
			keys:  [2]string{"customer", "currency"},
			vals:  []string{"orders", "paid_orders", "shipped_orders", "cancelled_orders", "ordered_amount", "paid_amount"},
			// A paid order cancelled later counts as paid and as cancelled.
			delta: func(r *orderRow, e aggregate.Event) ([2]string, []int64, bool) {
				k := [2]string{r.customer, r.currency}
				switch e := e.(type) {
				case aggregate.OrderPlaced:
					return k, []int64{1, 0, 0, 0, e.Total, 0}, true
				case aggregate.OrderPaid:
					return k, []int64{0, 1, 0, 0, 0, e.Amount}, true
				case aggregate.OrderShipped:
					return k, []int64{0, 0, 1, 0, 0, 0}, true
				case aggregate.OrderCancelled:
					return k, []int64{0, 0, 0, 1, 0, 0}, true
				}
				return k, nil, false
			},
		},
	}
}

// ---- daily_revenue ----------------------------------------------------------------------

func dailyRevenue() *projection {
	return &projection{
		name: DailyRevenue,
		tables: []tableSpec{
			{name: "daily_revenue_state", create: func(t, gen string) []string {
				return []string{`CREATE TABLE ` + t + ` (
	order_id TEXT NOT NULL,
	applied_revision BIGINT NOT NULL,
	CONSTRAINT ` + t + `_pk_` + gen + ` PRIMARY KEY (order_id))`}
			}},
			{name: "daily_revenue", create: func(t, gen string) []string {
				return []string{`CREATE TABLE ` + t + ` (
	day TEXT NOT NULL,
	currency TEXT NOT NULL,
	payments BIGINT NOT NULL,
	amount BIGINT NOT NULL,
	CONSTRAINT ` + t + `_pk_` + gen + ` PRIMARY KEY (day, currency))`}
			}},
		},
		state: stateSpec{
			table: "daily_revenue_state",
			cols:  []column{{"order_id", "text"}, {"applied_revision", "bigint"}},
			get:   func(r *orderRow) []any { return []any{r.id, r.rev} },
			ptrs:  func(r *orderRow) []any { return []any{&r.id, &r.rev} },
		},
		totals: &totalsSpec{
			table: "daily_revenue",
			keys:  [2]string{"day", "currency"},
			vals:  []string{"payments", "amount"},
			// A cancellation after payment does not reverse it.
			delta: func(_ *orderRow, e aggregate.Event) ([2]string, []int64, bool) {
				if p, ok := e.(aggregate.OrderPaid); ok {
					return [2]string{p.PaidAt.UTC().Format(dayFormat), p.Currency}, []int64{1, p.Amount}, true
				}
				return [2]string{}, nil, false
			},
		},
	}
}

// nullString is how a nullable text column is held in memory.
type nullString = sql.NullString
