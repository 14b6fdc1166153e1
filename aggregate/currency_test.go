package aggregate

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestFormatMoney(t *testing.T) {
	tests := []struct {
		minor    int64
		currency string
		want     string
	}{
		{1250, "EUR", "12.50 EUR"},
		{5, "EUR", "0.05 EUR"},
		{-5, "USD", "-0.05 USD"},
		{110, "JPY", "110 JPY"},
		{1250, "BHD", "1.250 BHD"},
		{7, "CLF", "0.0007 CLF"},
		{math.MinInt64, "EUR", "-92233720368547758.08 EUR"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := FormatMoney(tc.minor, tc.currency); got != tc.want {
				t.Fatalf("FormatMoney(%d, %s) = %q, want %q", tc.minor, tc.currency, got, tc.want)
			}
		})
	}
}

func TestPlaceRefusesCodesOutsideISO4217(t *testing.T) {
	lines := []Line{{SKU: "B", Quantity: 1, UnitPrice: 100}}
	for _, c := range []string{"XYZ", "eur", "EURO", "", "XXX", "XTS"} {
		err := New("6f1c1f4e-4d5e-4d7c-9a1b-6a3f1c2d3e4f").Place(PlaceOrder{Customer: "a@example.com", Lines: lines, Currency: c}, time.Unix(0, 0))
		if !errors.Is(err, ErrInvalidCurrency) {
			t.Errorf("currency %q: err = %v, want ErrInvalidCurrency", c, err)
		}
	}
	for _, c := range []string{"EUR", "JPY", "BHD", "CHF"} {
		if err := New("6f1c1f4e-4d5e-4d7c-9a1b-6a3f1c2d3e4f").Place(PlaceOrder{Customer: "a@example.com", Lines: lines, Currency: c}, time.Unix(0, 0)); err != nil {
			t.Errorf("currency %q: %v", c, err)
		}
	}
}
