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

// parseItem parses SKU:QTY:UNIT_MINOR. The SKU may itself contain colons: the last two
// fields are the numbers.
func parseItem(s string) (aggregate.Line, error) {
	bad := func(why string) error {
		return usageErrorf("bad --item %q: %s (want SKU:QTY:UNIT_MINOR, e.g. BOOK-1:2:1250)", s, why)
	}
	j := strings.LastIndexByte(s, ':')
	if j < 0 {
		return aggregate.Line{}, bad("missing fields")
	}
	i := strings.LastIndexByte(s[:j], ':')
	if i < 0 {
		return aggregate.Line{}, bad("missing fields")
	}
	sku, qtyS, unitS := s[:i], s[i+1:j], s[j+1:]
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
	if _, unreachable := errors.AsType[*unreachableError](err); unreachable {
		return res, fmt.Errorf("%w; nothing appended", err)
	}
	return res, err
}

func (a *app) placeCmd() *cobra.Command {
	var customer, currency, orderID string
	var items []string
	cmd := &cobra.Command{
		Use:   "place --customer EMAIL --item SKU:QTY:UNIT_MINOR [--item ...] [--currency EUR] [--id UUID]",
		Short: "Place a new order and print its id",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(items) == 0 {
				return usageErrorf("place needs at least one --item SKU:QTY:UNIT_MINOR")
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
	f.StringArrayVar(&items, "item", nil, "order line SKU:QTY:UNIT_MINOR (repeatable; unit price in minor units)")
	f.StringVar(&currency, "currency", "EUR", "ISO 4217 currency code")
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
	return &cobra.Command{
		Use:   "show ID",
		Short: "Print an order's state and its event history",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseOrderID(args[0])
			if err != nil {
				return err
			}
			var o *aggregate.Order
			var h eventstore.History
			err = a.withRepository(cmd.Context(), func(ctx context.Context, repo *eventstore.Repository) error {
				var err error
				o, h, err = repo.Load(ctx, id)
				return err
			})
			if err != nil {
				return err
			}
			out := showJSON(o, h)
			if a.jsonOut {
				return a.printJSON(out)
			}
			return a.printShow(out)
		},
	}
}

// showOutput is the JSON printed by show.
type showOutput struct {
	ID           string           `json:"id"`
	Status       string           `json:"status"`
	Customer     string           `json:"customer"`
	Total        int64            `json:"total"`
	Currency     string           `json:"currency"`
	Lines        []aggregate.Line `json:"lines"`
	PaymentRef   string           `json:"paymentRef,omitempty"`
	CancelReason string           `json:"cancelReason,omitempty"`
	Revision     int64            `json:"revision"`
	Events       []eventOutput    `json:"events"`
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
		Lines:        o.Lines(),
		PaymentRef:   o.PaymentRef(),
		CancelReason: o.CancelReason(),
		Revision:     o.Version(),
		Events:       make([]eventOutput, len(h)),
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
	fmt.Fprintf(w, "status\t%s\n", out.Status)
	fmt.Fprintf(w, "customer\t%s\n", out.Customer)
	fmt.Fprintf(w, "total\t%d %s (minor units)\n", out.Total, out.Currency)
	for _, l := range out.Lines {
		fmt.Fprintf(w, "line\t%s x %d at %d\n", l.SKU, l.Quantity, l.UnitPrice)
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
