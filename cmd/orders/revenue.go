package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/projections"
)

// revenueTotal is the sum of the selected days in one currency.
type revenueTotal struct {
	Currency string `json:"currency"`
	Payments int64  `json:"payments"`
	Amount   int64  `json:"amount"`
}

// revenueTotals sums rows per currency, in the order currencies first appear.
func revenueTotals(rows []projections.Revenue) []revenueTotal {
	out := []revenueTotal{}
	at := map[string]int{}
	for _, r := range rows {
		i, ok := at[r.Currency]
		if !ok {
			i = len(out)
			at[r.Currency] = i
			out = append(out, revenueTotal{Currency: r.Currency})
		}
		out[i].Payments += r.Payments
		out[i].Amount += r.Amount
	}
	return out
}

// parseDay checks a --from/--to value: a calendar day, YYYY-MM-DD.
func parseDay(flag, s string) error {
	if s == "" {
		return nil
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		return usageErrorf("bad --%s %q: want a day as YYYY-MM-DD (UTC)", flag, s)
	}
	return nil
}

// validCurrency reports whether s is three upper-case ASCII letters.
func validCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range 3 {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// revenueCmd prints the daily_revenue read model.
func (a *app) revenueCmd() *cobra.Command {
	var db string
	var f projections.RevenueFilter
	cmd := &cobra.Command{
		Use:   "revenue [--from DAY] [--to DAY] [--currency C] [--data DIR | --db URL]",
		Short: "Payments received per UTC day and currency, with totals (daily_revenue read model)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := parseDay("from", f.From); err != nil {
				return err
			}
			if err := parseDay("to", f.To); err != nil {
				return err
			}
			if f.From != "" && f.To != "" && f.From > f.To {
				return usageErrorf("--from %s is after --to %s", f.From, f.To)
			}
			if f.Currency != "" && !validCurrency(f.Currency) {
				return usageErrorf("bad --currency %q: want an ISO 4217 code such as EUR", f.Currency)
			}
			var rows []projections.Revenue
			err := a.withStore(cmd.Context(), db, func(ctx context.Context, s *projections.Store) (err error) {
				rows, err = s.Revenue(ctx, f)
				return err
			})
			if err != nil {
				return err
			}
			totals := revenueTotals(rows)
			if a.jsonOut {
				return a.printJSON(struct {
					Revenue []projections.Revenue `json:"revenue"`
					Totals  []revenueTotal        `json:"totals"`
				}{rows, totals})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "DAY\tCURRENCY\tPAYMENTS\tAMOUNT\t")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t\n", r.Day, r.Currency, r.Payments, aggregate.FormatMoney(r.Amount, r.Currency))
			}
			for _, t := range totals {
				fmt.Fprintf(tw, "total\t%s\t%d\t%s\t\n", t.Currency, t.Payments, aggregate.FormatMoney(t.Amount, t.Currency))
			}
			return tw.Flush()
		},
	}
	a.dbFlag(cmd, &db)
	fl := cmd.Flags()
	fl.StringVar(&f.From, "from", "", "first UTC day, YYYY-MM-DD (default: the first with payments)")
	fl.StringVar(&f.To, "to", "", "last UTC day, YYYY-MM-DD (default: the last with payments)")
	fl.StringVar(&f.Currency, "currency", "", "only this currency (ISO 4217 code)")
	return cmd
}
