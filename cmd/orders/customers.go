package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/projections"
)

// customersCmd prints the customer_orders read model.
func (a *app) customersCmd() *cobra.Command {
	var db, customer string
	cmd := &cobra.Command{
		Use:   "customers [--customer EMAIL] [--data DIR | --db URL]",
		Short: "Per customer and currency: orders placed, paid, shipped, cancelled, amounts ordered and paid (customer_orders read model)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rows []projections.CustomerTotals
			err := a.withStore(cmd.Context(), db, func(ctx context.Context, s *projections.Store) (err error) {
				rows, err = s.Customers(ctx, customer)
				return err
			})
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(struct {
					Customers []projections.CustomerTotals `json:"customers"`
				}{rows})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "CUSTOMER\tCURRENCY\tORDERS\tPAID\tSHIPPED\tCANCELLED\tORDERED\tPAID AMOUNT\t")
			for _, c := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t\n", c.Customer, c.Currency, c.Orders, c.PaidOrders, c.ShippedOrders,
					c.CancelledOrders, aggregate.FormatMoney(c.OrderedAmount, c.Currency), aggregate.FormatMoney(c.PaidAmount, c.Currency))
			}
			return tw.Flush()
		},
	}
	a.dbFlag(cmd, &db)
	cmd.Flags().StringVar(&customer, "customer", "", "only this customer (e-mail address)")
	return cmd
}

// withStore opens the read models at db for one query, within the command's time limit.
func (a *app) withStore(ctx context.Context, db string, f func(context.Context, *projections.Store) error) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	s, err := a.openStore(ctx, db)
	if err != nil {
		return err
	}
	defer s.Close()
	return f(ctx, s)
}
