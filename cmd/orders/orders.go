package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
)

// source is stored in the metadata of the events the order commands append.
const source = "orders-cli"

// parseOrderID accepts a UUID and returns it in canonical form.
func parseOrderID(s string) (string, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return "", usageErrorf("malformed order id %q: want a UUID", s)
	}
	return u.String(), nil
}

// itemSyntax is how --item is written, for help and messages.
const itemSyntax = `SKU:QTY:UNIT_MINOR (e.g. BOOK-1:2:1250; write a colon inside a SKU as \:, e.g. urn\:sku\:9:1:500)`

// parseItem parses SKU:QTY:UNIT_MINOR: exactly three fields separated by colons. A colon that
// belongs to the SKU is written "\:" and a backslash "\\", so that a stray field (a typo such
// as BOOK:1:100:5) is refused instead of read as another SKU.
func parseItem(s string) (aggregate.Line, error) {
	bad := func(why string) error {
		return usageErrorf("bad --item %q: %s (want %s)", s, why, itemSyntax)
	}
	var fields []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s) && (s[i+1] == ':' || s[i+1] == '\\'):
			cur.WriteByte(s[i+1])
			i++
		case c == ':':
			fields = append(fields, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	fields = append(fields, cur.String())
	switch {
	case len(fields) < 3:
		return aggregate.Line{}, bad("missing fields")
	case len(fields) > 3:
		return aggregate.Line{}, bad(fmt.Sprintf("%d fields, want 3", len(fields)))
	}
	sku, qtyS, unitS := fields[0], fields[1], fields[2]
	if strings.TrimSpace(sku) == "" {
		return aggregate.Line{}, bad("empty SKU")
	}
	qty, err := strconv.ParseInt(qtyS, 10, 64)
	if err != nil {
		return aggregate.Line{}, bad("quantity is not an integer")
	}
	if qty <= 0 {
		return aggregate.Line{}, bad("quantity must be positive")
	}
	unit, err := strconv.ParseInt(unitS, 10, 64)
	if err != nil {
		return aggregate.Line{}, bad("unit price is not an integer (minor units)")
	}
	if unit < 0 {
		return aggregate.Line{}, bad("unit price must not be negative")
	}
	return aggregate.Line{SKU: sku, Quantity: qty, UnitPrice: unit}, nil
}

// checkCurrency refuses a code outside ISO 4217 before the aggregate does, with a hint for
// the usual slip (lower case, a name instead of a code).
func checkCurrency(c string) error {
	if aggregate.IsCurrency(c) {
		return nil
	}
	if aggregate.IsCurrency(strings.ToUpper(c)) {
		return usageErrorf("unknown currency %q: currency codes are three capital letters, e.g. %s", c, strings.ToUpper(c))
	}
	return usageErrorf("unknown currency %q: not an ISO 4217 code (currency codes are three capital letters, e.g. EUR)", c)
}

// withRepository connects to EventStoreDB for one command, within the command's time limit,
// and turns an unreachable node into one clear error.
func (a *app) withRepository(ctx context.Context, f func(context.Context, *eventstore.Repository) error) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	client, err := eventstore.Connect(a.esdbURL)
	if err != nil {
		return err
	}
	defer client.Close()
	repo, err := eventstore.NewRepository(client, eventstore.RepositoryConfig{NewID: a.newID})
	if err != nil {
		return err
	}
	err = f(ctx, repo)
	switch {
	case errors.Is(err, eventstore.ErrUnavailable):
		return &unreachableError{addr: eventstore.Address(a.esdbURL), err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &unreachableError{addr: eventstore.Address(a.esdbURL), err: fmt.Errorf("no answer within %v", a.timeout)}
	}
	return err
}

// execute runs the command c and reports the outcome. The events get ids derived from c, so
// running the same command again appends nothing (see eventstore.Command). retry is the
// command line that runs it again, for the message when the outcome is unknown.
func (a *app) execute(ctx context.Context, c eventstore.Command, retry string, decide func(*aggregate.Order) error) (eventstore.Result, error) {
	var res eventstore.Result
	err := a.withRepository(ctx, func(ctx context.Context, repo *eventstore.Repository) error {
		md := eventstore.CommandMetadata(a.newID().String(), source)
		var err error
		res, err = repo.ExecuteCommand(ctx, c, md, decide)
		return err
	})
	if errors.Is(err, eventstore.ErrOutcomeUnknown) {
		return res, &outcomeUnknownError{addr: eventstore.Address(a.esdbURL), id: c.OrderID, retry: retry, err: err}
	}
	if u, unreachable := errors.AsType[*unreachableError](err); unreachable {
		u.nothingAppended = true
	}
	return res, orderNotFound(c.OrderID, err)
}

func (a *app) placeCmd() *cobra.Command {
	var customer, currency, orderID string
	var items []string
	cmd := &cobra.Command{
		Use:   "place --customer EMAIL --item SKU:QTY:UNIT_MINOR [--item ...] [--currency EUR] [--id UUID]",
		Short: "Place a new order and print its id",
		Long: "place appends OrderPlaced to a new order stream and prints the order's id.\n\n" +
			"Each --item is " + itemSyntax + ".\n" +
			"UNIT_MINOR is the unit price in minor units of --currency (cents for EUR, yen for JPY).",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(customer) == "" {
				return usageErrorf("--customer is required (the customer's e-mail address)")
			}
			if len(items) == 0 {
				return usageErrorf("place needs at least one --item %s", itemSyntax)
			}
			if err := checkCurrency(currency); err != nil {
				return err
			}
			lines := make([]aggregate.Line, 0, len(items))
			for _, it := range items {
				l, err := parseItem(it)
				if err != nil {
					return err
				}
				lines = append(lines, l)
			}
			place := aggregate.PlaceOrder{Customer: customer, Lines: lines, Currency: currency}
			id, now := a.newID().String(), a.now()
			if cmd.Flags().Changed("id") {
				var err error
				if id, err = parseOrderID(orderID); err != nil {
					return err
				}
			}
			// The aggregate's own validation, on a fresh order, before touching the store: bad
			// input is reported as such even when the node is down.
			if err := aggregate.New(id).Place(place, now); err != nil {
				return err
			}
			res, err := a.execute(cmd.Context(), placeCommand(id, place), placeRetry(id, place),
				func(o *aggregate.Order) error { return o.Place(place, now) })
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(commandJSON(res, id))
			}
			if res.AlreadyRecorded {
				// stdout keeps the id alone, for scripts; the note goes to stderr.
				fmt.Fprintf(a.stderr, "orders: order %s was already placed by this command: already recorded, nothing appended\n", id)
			}
			_, err = fmt.Fprintln(a.stdout, id)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&customer, "customer", "", "customer e-mail address (required)")
	f.StringArrayVar(&items, "item", nil, "order line SKU:QTY:UNIT_MINOR (repeatable; unit price in minor units; a colon inside a SKU is written \\:)")
	f.StringVar(&currency, "currency", "EUR", "ISO 4217 currency code (three capital letters)")
	f.StringVar(&orderID, "id", "", "the order's id, a UUID (default: a fresh one); placing again with the same id and arguments appends nothing")
	return cmd
}

func (a *app) payCmd() *cobra.Command {
	var ref string
	var amount int64
	cmd := &cobra.Command{
		Use:   "pay ID [--payment-ref REF] [--amount MINOR]",
		Short: "Record the payment of an order (amount defaults to its total)",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseOrderID(args[0])
			if err != nil {
				return err
			}
			amountGiven := cmd.Flags().Changed("amount")
			if amountGiven && amount <= 0 {
				return usageErrorf("--amount must be positive, got %d", amount)
			}
			if cmd.Flags().Changed("payment-ref") && strings.TrimSpace(ref) == "" {
				return usageErrorf("--payment-ref must not be empty")
			}
			if ref == "" {
				ref = defaultPaymentRef(id)
			}
			now := a.now()
			retry := "orders pay " + id + " --payment-ref " + shellQuote(ref)
			if amountGiven {
				retry += " --amount " + strconv.FormatInt(amount, 10)
			}
			res, err := a.execute(cmd.Context(), payCommand(id, ref, amount), retry, func(o *aggregate.Order) error {
				amt := amount
				if !amountGiven {
					amt = o.Total()
				}
				return o.Pay(ref, amt, now)
			})
			if err != nil {
				return err
			}
			return a.reportCommand(res, id, "paid", fmt.Sprintf("with reference %s", res.Order.PaymentRef()))
		},
	}
	f := cmd.Flags()
	f.StringVar(&ref, "payment-ref", "", "payment reference (default: pay-ID); paying again with the same reference is a no-op")
	f.Int64Var(&amount, "amount", 0, "amount in minor units (default: the order's total)")
	return cmd
}

func (a *app) shipCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ship ID",
		Short: "Record the shipping of a paid order",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseOrderID(args[0])
			if err != nil {
				return err
			}
			now := a.now()
			res, err := a.execute(cmd.Context(), shipCommand(id), "orders ship "+id, func(o *aggregate.Order) error { return o.Ship(now) })
			if err != nil {
				return err
			}
			return a.reportCommand(res, id, "shipped", "")
		},
	}
}

func (a *app) cancelCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "cancel ID [--reason TEXT]",
		Short: "Cancel a placed or paid order",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseOrderID(args[0])
			if err != nil {
				return err
			}
			now := a.now()
			retry := "orders cancel " + id
			if reason != "" {
				retry += " --reason " + shellQuote(reason)
			}
			res, err := a.execute(cmd.Context(), cancelCommand(id, reason), retry, func(o *aggregate.Order) error { return o.Cancel(reason, now) })
			if err != nil {
				return err
			}
			return a.reportCommand(res, id, "cancelled", "")
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the order is cancelled")
	return cmd
}

// commandOutput is the JSON printed by place, pay, ship and cancel.
type commandOutput struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Revision   int64  `json:"revision"`
	Position   uint64 `json:"position,omitempty"`
	Appended   int    `json:"appended"`
	Total      int64  `json:"total"`
	Currency   string `json:"currency"`
	PaymentRef string `json:"paymentRef,omitempty"`
	// AlreadyRecorded: the same command had been recorded before; nothing was appended.
	AlreadyRecorded bool `json:"alreadyRecorded"`
}

func commandJSON(res eventstore.Result, id string) commandOutput {
	o := res.Order
	return commandOutput{
		ID:         id,
		Status:     string(o.Status()),
		Revision:   res.Revision,
		Position:   res.Position,
		Appended:   res.Appended,
		Total:      o.Total(),
		Currency:   o.Currency(),
		PaymentRef: o.PaymentRef(),

		AlreadyRecorded: res.AlreadyRecorded,
	}
}

func (a *app) reportCommand(res eventstore.Result, id, done, detail string) error {
	if a.jsonOut {
		return a.printJSON(commandJSON(res, id))
	}
	if detail != "" {
		detail = " " + detail
	}
	var err error
	switch {
	case res.AlreadyRecorded:
		_, err = fmt.Fprintf(a.stdout, "order %s already %s%s by this command: already recorded, nothing appended (revision %d)\n", id, done, detail, res.Revision)
	case res.Appended == 0:
		_, err = fmt.Fprintf(a.stdout, "order %s already %s%s; nothing appended (revision %d)\n", id, done, detail, res.Revision)
	default:
		_, err = fmt.Fprintf(a.stdout, "order %s %s%s (revision %d)\n", id, done, detail, res.Revision)
	}
	return err
}

func (a *app) showCmd() *cobra.Command {
	var at string
	cmd := &cobra.Command{
		Use:   "show ID [--at REVISION|TIME]",
		Short: "Print an order's state and its event history",
		Long: "show folds the order's stream and prints the state and the events.\n\n" +
			"--at folds only up to a point: a stream revision (0 is the first event), or an RFC 3339\n" +
			"time such as 2026-11-29T10:00:00Z (the events recorded at or before it). The output says so.",
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseOrderID(args[0])
			if err != nil {
				return err
			}
			until, err := parseAt(at)
			if err != nil {
				return err
			}
			var h eventstore.History
			err = a.withRepository(cmd.Context(), func(ctx context.Context, repo *eventstore.Repository) error {
				var err error
				_, h, err = repo.Load(ctx, id)
				return err
			})
			if err != nil {
				return orderNotFound(id, err)
			}
			n, err := until.count(id, h)
			if err != nil {
				return err
			}
			events := make([]aggregate.Event, n)
			for i := range n {
				events[i] = h[i].Event
			}
			o, err := aggregate.Load(id, events)
			if err != nil {
				return err
			}
			out := showJSON(o, h[:n])
			if until.given {
				out.AsOf = &asOfOutput{At: at, Revision: int64(n) - 1, LaterEvents: len(h) - n}
				if until.byTime {
					t := until.time.UTC()
					out.AsOf.Time = &t
				}
			}
			if a.jsonOut {
				return a.printJSON(out)
			}
			return a.printShow(out)
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "fold the stream only up to this revision or RFC 3339 time")
	return cmd
}

// asOf is show's --at: a last revision, or a time.
type asOf struct {
	given    bool
	byTime   bool
	revision uint64
	time     time.Time
}

func parseAt(s string) (asOf, error) {
	if s == "" {
		return asOf{}, nil
	}
	if r, err := strconv.ParseUint(s, 10, 64); err == nil {
		return asOf{given: true, revision: r}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return asOf{given: true, byTime: true, time: t}, nil
	}
	return asOf{}, usageErrorf("bad --at %q: want a revision (0, 1, ...) or an RFC 3339 time (e.g. 2026-11-29T10:00:00Z)", s)
}

// count is how many events of h (in revision order, dense from 0) the state at u folds.
func (u asOf) count(id string, h eventstore.History) (int, error) {
	switch {
	case !u.given:
		return len(h), nil
	case u.byTime:
		n := 0
		for n < len(h) && !h[n].Created.After(u.time) {
			n++
		}
		if n == 0 {
			return 0, fmt.Errorf("order %q did not exist yet at %s (placed at %s)", id,
				u.time.UTC().Format(time.RFC3339), h[0].Created.UTC().Format(time.RFC3339))
		}
		return n, nil
	default:
		if last := uint64(len(h) - 1); u.revision > last {
			return 0, fmt.Errorf("order %q has no revision %d (its last revision is %d)", id, u.revision, last)
		}
		return int(u.revision) + 1, nil
	}
}

// showOutput is the JSON printed by show.
type showOutput struct {
	ID           string        `json:"id"`
	Status       string        `json:"status"`
	Customer     string        `json:"customer"`
	Total        int64         `json:"total"`
	Currency     string        `json:"currency"`
	Lines        []lineOutput  `json:"lines"`
	PaymentRef   string        `json:"paymentRef,omitempty"`
	CancelReason string        `json:"cancelReason,omitempty"`
	Revision     int64         `json:"revision"`
	AsOf         *asOfOutput   `json:"asOf,omitempty"`
	Events       []eventOutput `json:"events"`
}

// lineOutput is one order line; unitPrice in minor units, like every amount in JSON.
type lineOutput struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unitPrice"`
}

// asOfOutput says that show folded the stream only up to a point (--at).
type asOfOutput struct {
	At          string     `json:"at"`             // --at as given
	Revision    int64      `json:"revision"`       // the last revision folded
	Time        *time.Time `json:"time,omitempty"` // --at as a time
	LaterEvents int        `json:"laterEvents"`    // events after it, not folded
}

type eventOutput struct {
	Revision      uint64    `json:"revision"`
	Type          string    `json:"type"`
	Time          time.Time `json:"time"`
	EventID       string    `json:"eventId"`
	Position      uint64    `json:"position"`
	CorrelationID string    `json:"correlationId,omitempty"`
	CausationID   string    `json:"causationId,omitempty"`
}

func showJSON(o *aggregate.Order, h eventstore.History) showOutput {
	out := showOutput{
		ID:           o.ID(),
		Status:       string(o.Status()),
		Customer:     o.Customer(),
		Total:        o.Total(),
		Currency:     o.Currency(),
		PaymentRef:   o.PaymentRef(),
		CancelReason: o.CancelReason(),
		Revision:     o.Version(),
		Events:       make([]eventOutput, len(h)),
	}
	for _, l := range o.Lines() {
		out.Lines = append(out.Lines, lineOutput{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: l.UnitPrice})
	}
	for i, r := range h {
		out.Events[i] = eventOutput{
			Revision:      r.Revision,
			Type:          r.Type,
			Time:          r.Created.UTC(),
			EventID:       r.EventID.String(),
			Position:      r.Position,
			CorrelationID: r.Metadata.CorrelationID,
			CausationID:   r.Metadata.CausationID,
		}
	}
	return out
}

func (a *app) printShow(out showOutput) error {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "order\t%s\n", out.ID)
	if out.AsOf != nil {
		fmt.Fprintf(w, "as of\trevision %d (--at %s); %d later event(s) not folded\n", out.AsOf.Revision, out.AsOf.At, out.AsOf.LaterEvents)
	}
	fmt.Fprintf(w, "status\t%s\n", out.Status)
	fmt.Fprintf(w, "customer\t%s\n", out.Customer)
	fmt.Fprintf(w, "total\t%s\n", aggregate.FormatMoney(out.Total, out.Currency))
	for _, l := range out.Lines {
		fmt.Fprintf(w, "line\t%s x %d at %s\n", l.SKU, l.Quantity, aggregate.FormatAmount(l.UnitPrice, out.Currency))
	}
	if out.PaymentRef != "" {
		fmt.Fprintf(w, "payment\t%s\n", out.PaymentRef)
	}
	if out.CancelReason != "" {
		fmt.Fprintf(w, "reason\t%s\n", out.CancelReason)
	}
	fmt.Fprintf(w, "revision\t%d\n", out.Revision)
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	w = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "REVISION\tTYPE\tTIME")
	for _, e := range out.Events {
		fmt.Fprintf(w, "%d\t%s\t%s\n", e.Revision, e.Type, e.Time.Format(time.RFC3339))
	}
	return w.Flush()
}
