package statusweb

import (
	"context"
	"fmt"
	"sort"
)

// Figures reports what the business read models hold, for the status page and
// /status.json: the top customers and the revenue by day.
type Figures interface {
	Figures(ctx context.Context) (ReadModels, error)
}

// FiguresFunc adapts a function to Figures.
type FiguresFunc func(ctx context.Context) (ReadModels, error)

// Figures calls f.
func (f FiguresFunc) Figures(ctx context.Context) (ReadModels, error) { return f(ctx) }

// ReadModels are the figures shown: at most a handful of customers, the
// largest payments first, and the revenue per UTC day and currency, oldest day
// first.
type ReadModels struct {
	TopCustomers []CustomerFigures
	Revenue      []DayRevenue
}

// CustomerFigures is one customer's orders in one currency.
type CustomerFigures struct {
	Customer   string `json:"customer"`
	Currency   string `json:"currency"`
	Orders     int64  `json:"orders"`
	PaidOrders int64  `json:"paidOrders"`
	PaidAmount int64  `json:"paidAmount"` // minor units
}

// DayRevenue is the payments received on one UTC day in one currency.
type DayRevenue struct {
	Day      string `json:"day"` // YYYY-MM-DD
	Currency string `json:"currency"`
	Payments int64  `json:"payments"`
	Amount   int64  `json:"amount"` // minor units
}

// defaultMoney is Options.Money's default.
func defaultMoney(minor int64, currency string) string {
	return fmt.Sprintf("%d %s (minor units)", minor, currency)
}

// Chart geometry, in SVG user units: the SVG scales to the page's width.
const (
	chartWidth   = 400
	chartHeight  = 160
	chartTop     = 14 // room for the largest bar's label
	chartBottom  = 18 // room for the day labels
	chartGap     = 4
	chartMaxSlot = 48 // a bar's width with its gap, at most: few days make narrow bars
)

// chart is one currency's revenue by day as an inline SVG bar chart.
type chart struct {
	Currency string
	Total    string
	Width    int
	Height   int
	Base     int // y of the axis
	Bars     []bar
}

type bar struct {
	X, Y, W, H int
	LabelX     int
	Day        string // MM-DD under the bar (every bar when few, else some)
	Title      string // tooltip and accessible name: day, amount, payments
	Value      string // shown above the largest bar
	ValueX     int    // where Value starts (or ends, with ValueEnd)
	ValueEnd   bool   // Value is right-aligned, so that it stays inside the chart
}

// charts builds one chart per currency (amounts of different currencies are
// not comparable), currencies in order of first appearance, bars by day.
func charts(rows []DayRevenue, money func(int64, string) string) []chart {
	byCur := map[string][]DayRevenue{}
	var order []string
	for _, r := range rows {
		if _, ok := byCur[r.Currency]; !ok {
			order = append(order, r.Currency)
		}
		byCur[r.Currency] = append(byCur[r.Currency], r)
	}
	out := make([]chart, 0, len(order))
	for _, cur := range order {
		days := byCur[cur]
		sort.Slice(days, func(i, j int) bool { return days[i].Day < days[j].Day })
		var maxAmount, total int64
		for _, d := range days {
			maxAmount = max(maxAmount, d.Amount)
			total += d.Amount
		}
		c := chart{Currency: cur, Total: money(total, cur), Width: chartWidth, Height: chartHeight, Base: chartHeight - chartBottom}
		slot := min(chartWidth/max(len(days), 1), chartMaxSlot)
		w := max(slot-chartGap, 1)
		labelEvery := max(1, (len(days)+11)/12)
		usable := c.Base - chartTop
		for i, d := range days {
			h := 0
			if maxAmount > 0 {
				h = int(float64(d.Amount) / float64(maxAmount) * float64(usable))
			}
			if d.Amount > 0 && h < 1 {
				h = 1
			}
			b := bar{
				X: i*slot + chartGap/2, Y: c.Base - h, W: w, H: h, LabelX: i*slot + slot/2,
				Title: fmt.Sprintf("%s: %s, %d payment(s)", d.Day, money(d.Amount, cur), d.Payments),
			}
			if i%labelEvery == 0 && len(d.Day) == 10 {
				b.Day = d.Day[5:]
			}
			if d.Amount == maxAmount {
				b.Value, b.ValueX = money(d.Amount, cur), b.X
				if b.LabelX > chartWidth/2 {
					b.ValueX, b.ValueEnd = b.X+b.W, true
				}
			}
			c.Bars = append(c.Bars, b)
		}
		out = append(out, c)
	}
	return out
}

// figuresView is what the page shows of the read models.
type figuresView struct {
	Enabled   bool
	Error     string
	Customers []customerRow
	Revenue   []revenueRow // newest day first
	Charts    []chart
}

type customerRow struct {
	CustomerFigures
	Paid string
}

type revenueRow struct {
	DayRevenue
	Money string
}

// readFigures asks the Figures source, if any.
func (s *Server) readFigures(ctx context.Context) (ReadModels, figuresView) {
	if s.opts.Figures == nil {
		return ReadModels{}, figuresView{}
	}
	rm, err := s.opts.Figures.Figures(ctx)
	v := figuresView{Enabled: true}
	if err != nil {
		s.opts.Logger.Warn("statusweb: read figures", "err", err)
		v.Error = err.Error()
		return ReadModels{}, v
	}
	for _, c := range rm.TopCustomers {
		v.Customers = append(v.Customers, customerRow{CustomerFigures: c, Paid: s.opts.Money(c.PaidAmount, c.Currency)})
	}
	for i := len(rm.Revenue) - 1; i >= 0; i-- {
		r := rm.Revenue[i]
		v.Revenue = append(v.Revenue, revenueRow{DayRevenue: r, Money: s.opts.Money(r.Amount, r.Currency)})
	}
	v.Charts = charts(rm.Revenue, s.opts.Money)
	return rm, v
}
