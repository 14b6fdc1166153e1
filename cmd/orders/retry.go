package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
)

// The identities of the order commands (eventstore.Command): the arguments that decide the
// events, in a fixed order. Running a command again with the same identity appends nothing.

func placeCommand(id string, p aggregate.PlaceOrder) eventstore.Command {
	args := []string{p.Customer, p.Currency}
	for _, l := range p.Lines {
		args = append(args, l.SKU, strconv.FormatInt(l.Quantity, 10), strconv.FormatInt(l.UnitPrice, 10))
	}
	return eventstore.Command{OrderID: id, Name: "place", Args: args}
}

// payCommand: amount 0 stands for "the order's total".
func payCommand(id, ref string, amount int64) eventstore.Command {
	a := ""
	if amount != 0 {
		a = strconv.FormatInt(amount, 10)
	}
	return eventstore.Command{OrderID: id, Name: "pay", Args: []string{ref, a}}
}

func shipCommand(id string) eventstore.Command { return eventstore.Command{OrderID: id, Name: "ship"} }

func cancelCommand(id, reason string) eventstore.Command {
	return eventstore.Command{OrderID: id, Name: "cancel", Args: []string{reason}}
}

// defaultPaymentRef is pay's reference when --payment-ref is not given. It is derived from
// the order id, not fresh, so that `orders pay ID` run again is the same command.
func defaultPaymentRef(id string) string { return "pay-" + id }

// outcomeUnknownError is eventstore.ErrOutcomeUnknown for one command, with what to do next.
type outcomeUnknownError struct {
	addr  string
	id    string
	retry string // the command line to run again
	err   error
}

func (e *outcomeUnknownError) Error() string {
	return fmt.Sprintf("order %s: the command reached EventStoreDB at %s but no answer came (%v); it may or may not be recorded. "+
		"Running the same command again is safe (it appends nothing if it was recorded) and says which: %s (or look: orders show %s)",
		e.id, e.addr, e.err, e.retry, e.id)
}

func (e *outcomeUnknownError) Unwrap() error { return e.err }

// placeRetry is the place command line that repeats place for the order id.
func placeRetry(id string, p aggregate.PlaceOrder) string {
	s := "orders place --id " + id + " --customer " + shellQuote(p.Customer)
	for _, l := range p.Lines {
		s += " --item " + shellQuote(fmt.Sprintf("%s:%d:%d", l.SKU, l.Quantity, l.UnitPrice))
	}
	return s + " --currency " + p.Currency
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./-_", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
