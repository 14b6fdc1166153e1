package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// OrderSummary is one row of order_summaries.
type OrderSummary struct {
	OrderID         string    `json:"orderId"`
	Customer        string    `json:"customer"`
	Status          string    `json:"status"`
	Currency        string    `json:"currency"`
	Total           int64     `json:"total"`
	Lines           int64     `json:"lines"`
	PaymentRef      string    `json:"paymentRef,omitempty"`
	PaidAmount      int64     `json:"paidAmount"`
	PlacedAt        time.Time `json:"placedAt"`
	PaidAt          time.Time `json:"paidAt,omitzero"`
	ShippedAt       time.Time `json:"shippedAt,omitzero"`
	CancelledAt     time.Time `json:"cancelledAt,omitzero"`
	CancelReason    string    `json:"cancelReason,omitempty"`
	UpdatedAt       time.Time `json:"updatedAt"`
	AppliedRevision uint64    `json:"appliedRevision"`
	AppliedPosition uint64    `json:"appliedPosition"`
}

// ListFilter selects orders for ListOrders. Zero fields select everything; Limit 0 means
// no limit.
type ListFilter struct {
	Status   string
	Customer string
	Limit    int
}

const summaryCols = "order_id, customer, status, currency, total, line_count, payment_ref, paid_amount, placed_at, paid_at, shipped_at, cancelled_at, cancel_reason, updated_at, applied_revision, applied_position"

func scanSummary(sc interface{ Scan(...any) error }) (OrderSummary, error) {
	var o OrderSummary
	var placed, paid, shipped, cancelled, updated sql.NullString
	var rev, pos int64
	err := sc.Scan(&o.OrderID, &o.Customer, &o.Status, &o.Currency, &o.Total, &o.Lines, &o.PaymentRef, &o.PaidAmount,
		&placed, &paid, &shipped, &cancelled, &o.CancelReason, &updated, &rev, &pos)
	o.PlacedAt, o.PaidAt, o.ShippedAt, o.CancelledAt, o.UpdatedAt = parseTime(placed), parseTime(paid), parseTime(shipped), parseTime(cancelled), parseTime(updated)
	o.AppliedRevision, o.AppliedPosition = uint64(rev), uint64(pos)
	return o, err
}

// ListOrders returns order summaries, newest placed first (then by id).
func (s *Store) ListOrders(ctx context.Context, f ListFilter) ([]OrderSummary, error) {
	q := "SELECT " + summaryCols + " FROM order_summaries"
	var where []string
	var args []any
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, f.Status)
	}
	if f.Customer != "" {
		where = append(where, "customer = ?")
		args = append(args, f.Customer)
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY placed_at DESC, order_id"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("projections: list orders: %w", err)
	}
	defer rows.Close()
	out := []OrderSummary{}
	for rows.Next() {
		o, err := scanSummary(rows)
		if err != nil {
			return nil, fmt.Errorf("projections: list orders: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("projections: list orders: %w", err)
	}
	return out, nil
}

// Order returns the summary of one order, ErrNotFound when the projection has not seen it.
func (s *Store) Order(ctx context.Context, id string) (OrderSummary, error) {
	o, err := scanSummary(s.r.QueryRowContext(ctx, s.q("SELECT "+summaryCols+" FROM order_summaries WHERE order_id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return OrderSummary{}, fmt.Errorf("%w: order %s", ErrNotFound, id)
	}
	if err != nil {
		return OrderSummary{}, fmt.Errorf("projections: order %s: %w", id, err)
	}
	return o, nil
}

// CustomerTotals is one row of customer_orders: one customer's orders in one currency.
// Orders counts placed orders, PaidOrders/ShippedOrders/CancelledOrders those that reached
// that state (a paid order cancelled later counts in both PaidOrders and CancelledOrders),
// OrderedAmount sums the totals of all placed orders and PaidAmount the payments received
// (a cancellation does not reverse a payment: the domain has no refund event).
type CustomerTotals struct {
	Customer        string `json:"customer"`
	Currency        string `json:"currency"`
	Orders          int64  `json:"orders"`
	PaidOrders      int64  `json:"paidOrders"`
	ShippedOrders   int64  `json:"shippedOrders"`
	CancelledOrders int64  `json:"cancelledOrders"`
	OrderedAmount   int64  `json:"orderedAmount"`
	PaidAmount      int64  `json:"paidAmount"`
}

// Customers returns customer_orders rows, for one customer or (customer "") all, ordered by
// customer and currency.
func (s *Store) Customers(ctx context.Context, customer string) ([]CustomerTotals, error) {
	q := "SELECT customer, currency, orders, paid_orders, shipped_orders, cancelled_orders, ordered_amount, paid_amount FROM customer_orders"
	var args []any
	if customer != "" {
		q += " WHERE customer = ?"
		args = append(args, customer)
	}
	return s.customerRows(ctx, "customers", q+" ORDER BY customer, currency", args...)
}

func (s *Store) customerRows(ctx context.Context, what, q string, args ...any) ([]CustomerTotals, error) {
	rows, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("projections: %s: %w", what, err)
	}
	defer rows.Close()
	out := []CustomerTotals{}
	for rows.Next() {
		var c CustomerTotals
		if err := rows.Scan(&c.Customer, &c.Currency, &c.Orders, &c.PaidOrders, &c.ShippedOrders, &c.CancelledOrders, &c.OrderedAmount, &c.PaidAmount); err != nil {
			return nil, fmt.Errorf("projections: %s: %w", what, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Revenue is one row of daily_revenue: the payments received on one UTC day (of PaidAt) in
// one currency. A later cancellation does not remove a payment.
type Revenue struct {
	Day      string `json:"day"` // YYYY-MM-DD
	Currency string `json:"currency"`
	Payments int64  `json:"payments"`
	Amount   int64  `json:"amount"`
}

// DailyRevenue returns daily_revenue rows with from <= day <= to ("" = unbounded), ordered
// by day and currency.
func (s *Store) DailyRevenue(ctx context.Context, from, to string) ([]Revenue, error) {
	return s.Revenue(ctx, RevenueFilter{From: from, To: to})
}

// RevenueFilter selects daily_revenue rows. Zero fields select everything; From and To are
// inclusive UTC days, YYYY-MM-DD.
type RevenueFilter struct {
	From, To string
	Currency string
}

// Revenue returns the daily_revenue rows f selects, ordered by day and currency.
func (s *Store) Revenue(ctx context.Context, f RevenueFilter) ([]Revenue, error) {
	q := "SELECT day, currency, payments, amount FROM daily_revenue WHERE 1 = 1"
	var args []any
	if f.From != "" {
		q += " AND day >= ?"
		args = append(args, f.From)
	}
	if f.To != "" {
		q += " AND day <= ?"
		args = append(args, f.To)
	}
	if f.Currency != "" {
		q += " AND currency = ?"
		args = append(args, f.Currency)
	}
	rows, err := s.r.QueryContext(ctx, s.q(q+" ORDER BY day, currency"), args...)
	if err != nil {
		return nil, fmt.Errorf("projections: daily revenue: %w", err)
	}
	defer rows.Close()
	out := []Revenue{}
	for rows.Next() {
		var r Revenue
		if err := rows.Scan(&r.Day, &r.Currency, &r.Payments, &r.Amount); err != nil {
			return nil, fmt.Errorf("projections: daily revenue: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// TopCustomers returns at most limit customer_orders rows (limit <= 0: all), the largest
// payments received first: by paid amount, then number of orders, both descending, then by
// customer and currency. Amounts in different currencies are compared as numbers of minor
// units; callers that show several currencies say so.
func (s *Store) TopCustomers(ctx context.Context, limit int) ([]CustomerTotals, error) {
	q := "SELECT customer, currency, orders, paid_orders, shipped_orders, cancelled_orders, ordered_amount, paid_amount FROM customer_orders" +
		" ORDER BY paid_amount DESC, orders DESC, customer, currency"
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	return s.customerRows(ctx, "top customers", q)
}

// Checkpoint is the recorded progress of one projection: its projection_positions row.
type Checkpoint struct {
	Name string `json:"name"`
	// Position is the highest $all commit position among the applied events. Persistent
	// subscriptions deliver out of order, so it is a high-water mark, not a promise that
	// every event before it is applied; EventsApplied is what lag is computed from.
	Position uint64 `json:"position"`
	// EventsApplied counts distinct events that changed the model (duplicates are not
	// counted): since every per-order row applies revisions 0, 1, 2, ... in order, it is the
	// number of order events of the log reflected in the model.
	EventsApplied int64     `json:"eventsApplied"`
	LastAppliedAt time.Time `json:"lastAppliedAt,omitzero"` // commit time of the last transaction that applied something
	RebuiltAt     time.Time `json:"rebuiltAt,omitzero"`     // when the last rebuild swapped in
}

// Checkpoints returns the recorded progress of every projection, in Names order.
func (s *Store) Checkpoints(ctx context.Context) ([]Checkpoint, error) { return checkpoints(ctx, s.r) }

func checkpoints(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]Checkpoint, error) {
	rows, err := db.QueryContext(ctx, "SELECT name, position, events_applied, last_applied_at, rebuilt_at FROM projection_positions")
	if err != nil {
		return nil, fmt.Errorf("projections: positions: %w", err)
	}
	defer rows.Close()
	byName := map[string]Checkpoint{}
	for rows.Next() {
		var c Checkpoint
		var pos int64
		var last, rebuilt sql.NullString
		if err := rows.Scan(&c.Name, &pos, &c.EventsApplied, &last, &rebuilt); err != nil {
			return nil, fmt.Errorf("projections: positions: %w", err)
		}
		c.Position, c.LastAppliedAt, c.RebuiltAt = uint64(pos), parseTime(last), parseTime(rebuilt)
		byName[c.Name] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("projections: positions: %w", err)
	}
	out := make([]Checkpoint, 0, len(byName))
	for _, n := range Names() {
		c, ok := byName[n]
		if !ok {
			c = Checkpoint{Name: n}
		}
		out = append(out, c)
	}
	return out, nil
}

// ProjectionStatus is a projection's checkpoint compared with the head of the log.
type ProjectionStatus struct {
	Checkpoint
	// HeadPosition is the commit position of the last event of $all when the log was last
	// counted (CountedAt), LogEvents the number of order events in $all up to it.
	HeadPosition uint64    `json:"headPosition"`
	LogEvents    int64     `json:"logEvents"`
	CountedAt    time.Time `json:"countedAt,omitzero"`
	// Lag is LogEvents - EventsApplied (0 if negative: events appended after the count): the
	// number of order events in the log not yet reflected in the model. It is exact on a
	// real node too, where positions are byte offsets, since both sides are event counts.
	Lag int64 `json:"lag"`
	// SinceLastApplied is the time since LastAppliedAt (0 if nothing was applied yet).
	SinceLastApplied time.Duration `json:"sinceLastAppliedNs"`
}

// Status combines the checkpoints with the last count of the log (see CountLog; Status
// itself does not read the log).
func (s *Store) Status(ctx context.Context) ([]ProjectionStatus, error) {
	head, err := s.LogHead(ctx)
	if err != nil {
		return nil, err
	}
	cps, err := s.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]ProjectionStatus, len(cps))
	for i, c := range cps {
		st := ProjectionStatus{Checkpoint: c, HeadPosition: head.Position, LogEvents: head.OrderEvents, CountedAt: head.CountedAt}
		st.Lag = max(0, head.OrderEvents-c.EventsApplied)
		if !c.LastAppliedAt.IsZero() {
			st.SinceLastApplied = max(0, now.Sub(c.LastAppliedAt))
		}
		out[i] = st
	}
	return out, nil
}
