package notify_test

import (
	"bytes"
	"flag"
	"net/mail"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/subscribers/notify"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var (
	placedAt  = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	paidAt    = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	shippedAt = time.Date(2026, 3, 2, 16, 45, 0, 0, time.UTC)
	goldenEv  = uuid.MustParse("6f1c7a52-3d4e-4b8a-9c1f-2a3b4c5d6e7f")
)

// goldenOrder is a placed, paid and (when ship) shipped order.
func goldenOrder(t *testing.T, ship bool) *aggregate.Order {
	t.Helper()
	o := aggregate.New("0b7e6f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
	require.NoError(t, o.Place(aggregate.PlaceOrder{
		Customer: "ada@example.com",
		Currency: "EUR",
		Lines: []aggregate.Line{
			{SKU: "BOOK-1", Quantity: 2, UnitPrice: 1250},
			{SKU: "PEN-7", Quantity: 1, UnitPrice: 99},
		},
	}, placedAt))
	require.NoError(t, o.Pay("pay-42", 2599, paidAt))
	if ship {
		require.NoError(t, o.Ship(shippedAt))
	}
	return o
}

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name string
		kind notify.Kind
		ship bool
		date time.Time
	}{
		{"payment confirmation", notify.KindPaymentConfirmation, false, paidAt},
		{"shipping notice", notify.KindShippingNotice, true, shippedAt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := goldenOrder(t, tt.ship)
			m, err := notify.Render(tt.kind, o, goldenEv, "shop@example.com", "shop.example", time.Unix(0, 0))
			require.NoError(t, err)
			assert.Equal(t, string(tt.kind)+"."+goldenEv.String()+"@shop.example", m.ID)
			assert.Equal(t, "shop@example.com", m.From)
			assert.Equal(t, "ada@example.com", m.To)
			assert.Equal(t, tt.date, m.Date)
			assert.Equal(t, o.ID(), m.OrderID)
			assert.Equal(t, goldenEv, m.EventID)

			got := "Subject: " + m.Subject + "\n\n" + m.Body
			golden := filepath.Join("testdata", string(tt.kind)+".golden.txt")
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.Equal(t, string(want), got)
		})
	}
}

func TestRenderRejectsUnknownKind(t *testing.T) {
	_, err := notify.Render("orderplaced", goldenOrder(t, false), goldenEv, "a@b.c", "d", paidAt)
	require.ErrorIs(t, err, notify.ErrInvalidMessage)
}

func TestMessageID(t *testing.T) {
	a := uuid.MustParse("00000000-0000-4000-8000-000000000001")
	b := uuid.MustParse("00000000-0000-4000-8000-000000000002")
	tests := []struct {
		name   string
		kind   notify.Kind
		id     uuid.UUID
		domain string
		want   string
	}{
		{"paid", notify.KindPaymentConfirmation, a, "orders.local", "orderpaid.00000000-0000-4000-8000-000000000001@orders.local"},
		{"shipped", notify.KindShippingNotice, a, "orders.local", "ordershipped.00000000-0000-4000-8000-000000000001@orders.local"},
		{"other event", notify.KindPaymentConfirmation, b, "x.example", "orderpaid.00000000-0000-4000-8000-000000000002@x.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := notify.MessageID(tt.kind, tt.id, tt.domain)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, got, notify.MessageID(tt.kind, tt.id, tt.domain), "deterministic")
		})
	}
}

func TestFormatMoney(t *testing.T) {
	tests := []struct {
		name     string
		minor    int64
		currency string
		want     string
	}{
		{"euros and cents", 2599, "EUR", "25.99 EUR"},
		{"cents only", 5, "USD", "0.05 USD"},
		{"zero", 0, "EUR", "0.00 EUR"},
		{"round", 100, "GBP", "1.00 GBP"},
		{"no minor unit", 500, "JPY", "500 JPY"},
		{"three digits", 1234, "KWD", "1.234 KWD"},
		{"negative", -150, "EUR", "-1.50 EUR"},
		{"largest", 9223372036854775807, "EUR", "92233720368547758.07 EUR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, notify.FormatMoney(tt.minor, tt.currency))
		})
	}
}

func TestEncodeHeaders(t *testing.T) {
	m, err := notify.Render(notify.KindPaymentConfirmation, goldenOrder(t, false), goldenEv, "shop@example.com", "shop.example", paidAt)
	require.NoError(t, err)
	raw, err := notify.Encode(m)
	require.NoError(t, err)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	require.NoError(t, err)
	want := map[string]string{
		"Message-Id":   "<orderpaid." + goldenEv.String() + "@shop.example>",
		"From":         "<shop@example.com>",
		"To":           "<ada@example.com>",
		"Date":         "Sun, 01 Mar 2026 10:00:00 +0000",
		"X-Event-Id":   goldenEv.String(),
		"X-Order-Id":   m.OrderID,
		"Content-Type": "text/plain; charset=UTF-8",
	}
	for k, v := range want {
		assert.Equal(t, v, msg.Header.Get(k), k)
	}
}
