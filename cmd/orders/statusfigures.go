package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"

	"github.com/orderstore/orders/cmd/orders/statusweb"
	"github.com/orderstore/orders/projections"
)

// Figures shown by serve's status page and JSON.
const (
	statusTopCustomers = 10 // customers, the largest payments first
	statusRevenueDays  = 30 // the last days with payments
)

// storeFigures reads the status page's figures from the read models.
type storeFigures struct{ store *projections.Store }

var _ statusweb.Figures = storeFigures{}

// Figures returns the top customers and the revenue of the last statusRevenueDays days that
// had payments, oldest first.
func (f storeFigures) Figures(ctx context.Context) (statusweb.ReadModels, error) {
	top, err := f.store.TopCustomers(ctx, statusTopCustomers)
	if err != nil {
		return statusweb.ReadModels{}, err
	}
	rows, err := f.store.Revenue(ctx, projections.RevenueFilter{})
	if err != nil {
		return statusweb.ReadModels{}, err
	}
	rm := statusweb.ReadModels{TopCustomers: make([]statusweb.CustomerFigures, len(top)), Revenue: []statusweb.DayRevenue{}}
	for i, c := range top {
		rm.TopCustomers[i] = statusweb.CustomerFigures{Customer: c.Customer, Currency: c.Currency, Orders: c.Orders, PaidOrders: c.PaidOrders, PaidAmount: c.PaidAmount}
	}
	days := 0
	first := len(rows)
	for i := len(rows) - 1; i >= 0; i-- { // rows are by day: keep the last days
		if i == len(rows)-1 || rows[i].Day != rows[i+1].Day {
			days++
		}
		if days > statusRevenueDays {
			break
		}
		first = i
	}
	for _, r := range rows[first:] {
		rm.Revenue = append(rm.Revenue, statusweb.DayRevenue{Day: r.Day, Currency: r.Currency, Payments: r.Payments, Amount: r.Amount})
	}
	return rm, nil
}

// withFigures serves GET /status as next does (the projections' own JSON object) with the
// figures added as "topCustomers" and "revenue" (or "figuresError").
func withFigures(next http.Handler, figs statusweb.Figures) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]json.RawMessage
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
			copyResponse(w, rec)
			return
		}
		rm, err := figs.Figures(r.Context())
		if err != nil {
			body["figuresError"], _ = json.Marshal(err.Error())
		} else {
			body["topCustomers"], _ = json.Marshal(rm.TopCustomers)
			body["revenue"], _ = json.Marshal(rm.Revenue)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(body); err != nil {
			copyResponse(w, rec)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(buf.Bytes())
	})
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}
