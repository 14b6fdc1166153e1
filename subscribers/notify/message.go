package notify

import (
	"bytes"
	"fmt"
	"text/template"
	"time"

	"github.com/google/uuid"

	"github.com/orderstore/orders/aggregate"
)

// Kind is the kind of notice; it is the first part of the Message-ID.
type Kind string

// The notices sent.
const (
	KindPaymentConfirmation Kind = "orderpaid"
	KindShippingNotice      Kind = "ordershipped"
)

// Defaults of Config.
const (
	DefaultFrom   = "orders@localhost"
	DefaultDomain = "orders.local"
)

// Message is one e-mail, ready for a Transport.
type Message struct {
	// ID is the Message-ID without its angle brackets: MessageID(kind, event id, domain).
	ID      string
	From    string // bare address
	To      string // bare address
	Subject string
	Date    time.Time
	Body    string // plain text, UTF-8, lines separated by "\n"
	// EventID is the id of the event that caused the message (also in the X-Event-ID header).
	EventID uuid.UUID
	// OrderID is the order's id (also in the X-Order-ID header).
	OrderID string
}

// MessageID is the Message-ID (without angle brackets) of the notice of the given kind for
// the event with the given id: the same event always gives the same id, so a receiver can
// drop a duplicate sent after a crash between sending and recording.
func MessageID(kind Kind, eventID uuid.UUID, domain string) string {
	return string(kind) + "." + eventID.String() + "@" + domain
}

// FormatMoney formats an amount in minor units of currency with the currency's ISO 4217
// exponent: FormatMoney(1250, "EUR") is "12.50 EUR", FormatMoney(500, "JPY") is "500 JPY".
// It is aggregate.FormatMoney, the one rule every output follows.
func FormatMoney(minor int64, currency string) string { return aggregate.FormatMoney(minor, currency) }

// lineView is one order line as the templates see it.
type lineView struct {
	SKU       string
	Quantity  int64
	UnitPrice string
	Amount    string
}

// view is what the templates see.
type view struct {
	OrderID    string
	Customer   string
	Lines      []lineView
	Total      string
	PaymentRef string
	PaidAt     string
	ShippedAt  string
}

var templates = template.Must(template.New("notices").Parse(`
{{- define "orderpaid.subject"}}Payment received for order {{.OrderID}}{{end}}
{{- define "orderpaid.body" -}}
Hello,

we received your payment for order {{.OrderID}}. Thank you!

{{range .Lines}}  {{.Quantity}} x {{.SKU}} at {{.UnitPrice}} = {{.Amount}}
{{end}}
Total paid: {{.Total}}
Payment reference: {{.PaymentRef}}
Paid at: {{.PaidAt}}

We will let you know when your order ships.
{{end}}
{{- define "ordershipped.subject"}}Order {{.OrderID}} has shipped{{end}}
{{- define "ordershipped.body" -}}
Hello,

your order {{.OrderID}} has shipped.

{{range .Lines}}  {{.Quantity}} x {{.SKU}}
{{end}}
Total: {{.Total}}
Shipped at: {{.ShippedAt}}
{{end}}
`))

// Render builds the notice of the given kind for an order, folded up to the event that
// caused it. now is used as the Date only when the order has no time for the event.
func Render(kind Kind, o *aggregate.Order, eventID uuid.UUID, from, domain string, now time.Time) (Message, error) {
	if kind != KindPaymentConfirmation && kind != KindShippingNotice {
		return Message{}, fmt.Errorf("%w: unknown kind %q", ErrInvalidMessage, kind)
	}
	v := view{
		OrderID:    o.ID(),
		Customer:   o.Customer(),
		Total:      FormatMoney(o.Total(), o.Currency()),
		PaymentRef: o.PaymentRef(),
	}
	for _, l := range o.Lines() {
		v.Lines = append(v.Lines, lineView{
			SKU:       l.SKU,
			Quantity:  l.Quantity,
			UnitPrice: FormatMoney(l.UnitPrice, o.Currency()),
			// No overflow: the aggregate checked every product when the order was placed.
			Amount: FormatMoney(l.Quantity*l.UnitPrice, o.Currency()),
		})
	}
	date := now
	switch kind {
	case KindPaymentConfirmation:
		if t := o.PaidAt(); !t.IsZero() {
			date = t
		}
		v.PaidAt = date.UTC().Format(time.RFC1123)
	case KindShippingNotice:
		if t := o.ShippedAt(); !t.IsZero() {
			date = t
		}
		v.ShippedAt = date.UTC().Format(time.RFC1123)
	}
	var subject, body bytes.Buffer
	if err := templates.ExecuteTemplate(&subject, string(kind)+".subject", v); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	if err := templates.ExecuteTemplate(&body, string(kind)+".body", v); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	return Message{
		ID:      MessageID(kind, eventID, domain),
		From:    from,
		To:      o.Customer(),
		Subject: subject.String(),
		Date:    date.UTC(),
		Body:    body.String(),
		EventID: eventID,
		OrderID: o.ID(),
	}, nil
}
