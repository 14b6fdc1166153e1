package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/subscribers/notify"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the command could not be carried out
	exitUsage   = 2 // usage error or malformed input
	// exitOutcomeUnknown: an append was sent but its answer was lost; it may or may not be
	// recorded. Running the same command again is safe and tells.
	exitOutcomeUnknown = 3
)

// usageError marks a usage error or malformed input: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// unreachableError is ErrUnavailable with the address the user asked for.
type unreachableError struct {
	addr string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach EventStoreDB at %s: %v", e.addr, e.err)
}
func (e *unreachableError) Unwrap() error { return e.err }

// malformedInput are the errors that say the input itself is invalid, whatever the state of
// the store: they exit with status 2 like usage errors.
var malformedInput = []error{
	aggregate.ErrInvalidOrderID,
	aggregate.ErrInvalidCustomer,
	aggregate.ErrNoLines,
	aggregate.ErrInvalidLine,
	aggregate.ErrInvalidCurrency,
	aggregate.ErrInvalidAmount,
	aggregate.ErrInvalidPaymentRef,
	eventstore.ErrInvalidConnectionString,
	esdbnode.ErrBadAddr,
	esdbnode.ErrNotLoopback,
	esdbnode.ErrNoDataDir,
	notify.ErrInvalidSMTPURL,
}

// exitCode classifies err.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if _, ok := errors.AsType[*usageError](err); ok {
		return exitUsage
	}
	if errors.Is(err, eventstore.ErrOutcomeUnknown) {
		return exitOutcomeUnknown
	}
	for _, target := range malformedInput {
		if errors.Is(err, target) {
			return exitUsage
		}
	}
	return exitFailure
}

// message is the one line printed for err, without the "orders: " prefix.
func message(err error) string {
	s := err.Error()
	// Package prefixes say where an error was made, which a user does not need.
	for _, prefix := range []string{"aggregate: ", "eventstore: ", "esdbnode: ", "notify: "} {
		s = strings.ReplaceAll(s, prefix, "")
	}
	// Exactly one line, whatever the wrapped errors contain.
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
	return s
}
