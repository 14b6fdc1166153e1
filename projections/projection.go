package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
// it under the physical name t; gen makes constraint and index names unique, so that a
// shadow table renamed into place never collides with the next shadow's names. A projection
// lists its tables in the order its transactions write them (per-order state first), which
// is also the order a rebuild locks them in, so the two cannot deadlock.
type tableSpec struct {
	name   string
	create func(t, gen string) []string
}

// projection is one read model: its tables and how a batch of events changes them.
type projection struct {
	name   string
	tables []tableSpec
	// newBatch starts applying a batch inside one transaction; tn maps a logical table name
	// to the physical one (the live table or its rebuild shadow).
	newBatch func(tn func(string) string) batch
}

// batch applies events of one transaction. apply reports whether the event changed the
// model (false for a duplicate); flush writes what apply accumulated (cross-order totals,
// written in key order so that concurrent transactions lock rows in the same order).
type batch interface {
	apply(ctx context.Context, x *execer, ev event, e aggregate.Event) (bool, error)
	flush(ctx context.Context, x *execer) error
}

// execer runs dialect-neutral SQL (? placeholders) in a transaction.
type execer struct {
	d  dialect
	tx *sql.Tx
}

func (x *execer) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := x.tx.ExecContext(ctx, rebind(x.d, query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (x *execer) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return x.tx.QueryRowContext(ctx, rebind(x.d, query), args...)
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

// decode decodes an order event; unknown event types give (nil, nil): they advance the
// applied revision without other effect, so a newer writer's events do not block the model.
func decode(ev event) (aggregate.Event, error) {
	e, err := aggregate.DecodeEvent(ev.Type, ev.Data)
	if errors.Is(err, aggregate.ErrUnknownEventType) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s@%d: %w", ErrMalformedEvent, ev.Stream, ev.Revision, err)
	}
	return e, nil
}

// insertFirst inserts the row of an order for its revision-0 event; a row already there
// means the event was applied before (duplicate).
func insertFirst(ctx context.Context, x *execer, ev event, table string, cols []string, vals ...any) (bool, error) {
	if ev.Revision != 0 {
		return false, fmt.Errorf("%w: %s@%d: %s must be the first event of its stream", ErrMalformedEvent, ev.Stream, ev.Revision, ev.Type)
	}
	q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ") ON CONFLICT (order_id) DO NOTHING"
	n, err := x.exec(ctx, q, vals...)
	return n == 1, err
}

// advance moves the order's row from revision ev.Revision-1 to ev.Revision, setting sets
// (a "col = ?, ..." list with args) as well. It reports false for a duplicate (the row is at
// ev.Revision or later) and ErrOutOfOrder when the predecessor is not applied yet.
func advance(ctx context.Context, x *execer, ev event, table, sets string, args ...any) (bool, error) {
	return advanceReturning(ctx, x, ev, table, nil, nil, sets, args...)
}

// advanceReturning is advance that also scans the returning columns of the advanced row
// into dest.
func advanceReturning(ctx context.Context, x *execer, ev event, table string, returning []string, dest []any, sets string, args ...any) (bool, error) {
	id, _ := orderID(ev.Stream)
	if ev.Revision == 0 {
		// Only the first event creates the row; anything else at revision 0 cannot be applied.
		return false, fmt.Errorf("%w: %s@0: %s cannot be the first event of its stream", ErrMalformedEvent, ev.Stream, ev.Type)
	}
	q := "UPDATE " + table + " SET applied_revision = ?"
	a := []any{int64(ev.Revision)}
	if sets != "" {
		q += ", " + sets
		a = append(a, args...)
	}
	q += " WHERE order_id = ? AND applied_revision = ?"
	a = append(a, id, int64(ev.Revision)-1)
	if len(returning) > 0 {
		// One round trip: the row's columns come back when it advanced.
		err := x.queryRow(ctx, q+" RETURNING "+strings.Join(returning, ", "), a...).Scan(dest...)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return false, err
		}
	} else {
		n, err := x.exec(ctx, q, a...)
		if err != nil {
			return false, err
		}
		if n == 1 {
			return true, nil
		}
	}
	var applied int64
	err := x.queryRow(ctx, "SELECT applied_revision FROM "+table+" WHERE order_id = ?", id).Scan(&applied)
	if errors.Is(err, sql.ErrNoRows) {
		applied = -1
	} else if err != nil {
		return false, err
	}
	if applied >= int64(ev.Revision) {
		return false, nil
	}
	return false, fmt.Errorf("%w: %s@%d arrived while revision %d is applied", ErrOutOfOrder, ev.Stream, ev.Revision, applied)
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
		newBatch: func(tn func(string) string) batch { return &summariesBatch{t: tn("order_summaries")} },
	}
}

type summariesBatch struct{ t string }

func (b *summariesBatch) apply(ctx context.Context, x *execer, ev event, e aggregate.Event) (bool, error) {
	id, _ := orderID(ev.Stream)
	pos := int64(ev.Position)
	switch e := e.(type) {
	case aggregate.OrderPlaced:
		return insertFirst(ctx, x, ev, b.t,
			[]string{"order_id", "customer", "status", "currency", "total", "line_count", "placed_at", "updated_at", "applied_revision", "applied_position"},
			id, e.Customer, string(aggregate.StatusPlaced), e.Currency, e.Total, int64(len(e.Lines)),
			formatTime(e.PlacedAt), formatTime(e.PlacedAt), int64(0), pos)
	case aggregate.OrderPaid:
		return advance(ctx, x, ev, b.t, "status = ?, payment_ref = ?, paid_amount = ?, paid_at = ?, updated_at = ?, applied_position = ?",
			string(aggregate.StatusPaid), e.PaymentRef, e.Amount, formatTime(e.PaidAt), formatTime(e.PaidAt), pos)
	case aggregate.OrderShipped:
		return advance(ctx, x, ev, b.t, "status = ?, shipped_at = ?, updated_at = ?, applied_position = ?",
			string(aggregate.StatusShipped), formatTime(e.ShippedAt), formatTime(e.ShippedAt), pos)
	case aggregate.OrderCancelled:
		return advance(ctx, x, ev, b.t, "status = ?, cancelled_at = ?, cancel_reason = ?, updated_at = ?, applied_position = ?",
			string(aggregate.StatusCancelled), formatTime(e.CancelledAt), e.Reason, formatTime(e.CancelledAt), pos)
	default:
		return advance(ctx, x, ev, b.t, "applied_position = ?", pos)
	}
}

func (b *summariesBatch) flush(context.Context, *execer) error { return nil }

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
		newBatch: func(tn func(string) string) batch {
			return &customerBatch{totals: tn("customer_orders"), state: tn("customer_orders_state"), deltas: map[[2]string]*customerDelta{}}
		},
	}
}

type customerDelta struct{ orders, paid, shipped, cancelled, ordered, paidAmount int64 }

type customerBatch struct {
	totals, state string
	deltas        map[[2]string]*customerDelta
}

func (b *customerBatch) delta(key [2]string) *customerDelta {
	d := b.deltas[key]
	if d == nil {
		d = &customerDelta{}
		b.deltas[key] = d
	}
	return d
}

func (b *customerBatch) apply(ctx context.Context, x *execer, ev event, e aggregate.Event) (bool, error) {
	id, _ := orderID(ev.Stream)
	if p, ok := e.(aggregate.OrderPlaced); ok {
		applied, err := insertFirst(ctx, x, ev, b.state, []string{"order_id", "customer", "currency", "applied_revision"},
			id, p.Customer, p.Currency, int64(0))
		if applied {
			d := b.delta([2]string{p.Customer, p.Currency})
			d.orders++
			d.ordered += p.Total
		}
		return applied, err
	}
	var k [2]string
	applied, err := advanceReturning(ctx, x, ev, b.state, []string{"customer", "currency"}, []any{&k[0], &k[1]}, "")
	if !applied || err != nil {
		return applied, err
	}
	d := b.delta(k)
	switch e := e.(type) {
	case aggregate.OrderPaid:
		d.paid++
		d.paidAmount += e.Amount
	case aggregate.OrderShipped:
		d.shipped++
	case aggregate.OrderCancelled:
		d.cancelled++
	}
	return true, nil
}

func (b *customerBatch) flush(ctx context.Context, x *execer) error {
	keys := make([][2]string, 0, len(b.deltas))
	for k := range b.deltas {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, c [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], c[0]+"\x00"+c[1]) })
	t := b.totals
	q := "INSERT INTO " + t + " (customer, currency, orders, paid_orders, shipped_orders, cancelled_orders, ordered_amount, paid_amount)" +
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (customer, currency) DO UPDATE SET" +
		" orders = " + t + ".orders + excluded.orders," +
		" paid_orders = " + t + ".paid_orders + excluded.paid_orders," +
		" shipped_orders = " + t + ".shipped_orders + excluded.shipped_orders," +
		" cancelled_orders = " + t + ".cancelled_orders + excluded.cancelled_orders," +
		" ordered_amount = " + t + ".ordered_amount + excluded.ordered_amount," +
		" paid_amount = " + t + ".paid_amount + excluded.paid_amount"
	for _, k := range keys {
		d := b.deltas[k]
		if *d == (customerDelta{}) {
			continue
		}
		if _, err := x.exec(ctx, q, k[0], k[1], d.orders, d.paid, d.shipped, d.cancelled, d.ordered, d.paidAmount); err != nil {
			return err
		}
	}
	return nil
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
		newBatch: func(tn func(string) string) batch {
			return &revenueBatch{totals: tn("daily_revenue"), state: tn("daily_revenue_state"), deltas: map[[2]string]*[2]int64{}}
		},
	}
}

type revenueBatch struct {
	totals, state string
	deltas        map[[2]string]*[2]int64 // (day, currency) → (payments, amount)
}

func (b *revenueBatch) apply(ctx context.Context, x *execer, ev event, e aggregate.Event) (bool, error) {
	id, _ := orderID(ev.Stream)
	if _, ok := e.(aggregate.OrderPlaced); ok {
		return insertFirst(ctx, x, ev, b.state, []string{"order_id", "applied_revision"}, id, int64(0))
	}
	applied, err := advance(ctx, x, ev, b.state, "")
	if !applied || err != nil {
		return applied, err
	}
	if p, ok := e.(aggregate.OrderPaid); ok {
		k := [2]string{p.PaidAt.UTC().Format(dayFormat), p.Currency}
		d := b.deltas[k]
		if d == nil {
			d = &[2]int64{}
			b.deltas[k] = d
		}
		d[0]++
		d[1] += p.Amount
	}
	return true, nil
}

func (b *revenueBatch) flush(ctx context.Context, x *execer) error {
	keys := make([][2]string, 0, len(b.deltas))
	for k := range b.deltas {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, c [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], c[0]+"\x00"+c[1]) })
	t := b.totals
	q := "INSERT INTO " + t + " (day, currency, payments, amount) VALUES (?, ?, ?, ?)" +
		" ON CONFLICT (day, currency) DO UPDATE SET payments = " + t + ".payments + excluded.payments," +
		" amount = " + t + ".amount + excluded.amount"
	for _, k := range keys {
		d := b.deltas[k]
		if _, err := x.exec(ctx, q, k[0], k[1], d[0], d[1]); err != nil {
			return err
		}
	}
	return nil
}
