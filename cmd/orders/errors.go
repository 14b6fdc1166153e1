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
	// nothingAppended: the failed call was an append whose request never reached the node
	// (eventstore.ErrNotAppended or no connection at all), so the message says so.
	nothingAppended bool
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach EventStoreDB at %s: %v%s", e.addr, e.err, e.suffix())
}
func (e *unreachableError) Unwrap() error { return e.err }

// short is the message without the client's detail, which only --verbose shows.
func (e *unreachableError) short() string {
	return fmt.Sprintf("cannot reach EventStoreDB at %s (is \"orders serve\" running?)%s", e.addr, e.suffix())
}

func (e *unreachableError) suffix() string {
	if e.nothingAppended {
		return "; nothing appended"
	}
	return ""
}

// notFoundError is ErrOrderNotFound with the id the user gave, quoted like every id in a
// "not found" message.
type notFoundError struct {
	id  string
	err error
}

func (e *notFoundError) Error() string { return fmt.Sprintf("order %q not found", e.id) }
func (e *notFoundError) Unwrap() error { return e.err }

// groupNotFoundError is errGroupNotFound with the names asked for, quoted like every name in
// a "not found" message.
type groupNotFoundError struct{ group, stream string }

func (e *groupNotFoundError) Error() string {
	return fmt.Sprintf("persistent subscription group %q on %s not found", e.group, e.stream)
}
func (e *groupNotFoundError) Unwrap() error { return errGroupNotFound }

// orderNotFound turns ErrOrderNotFound into a *notFoundError naming id; other errors pass.
func orderNotFound(id string, err error) error {
	if errors.Is(err, aggregate.ErrOrderNotFound) {
		return &notFoundError{id: id, err: err}
	}
	return err
}

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

// errorCodeName is the "code" of the JSON error object: what kind of failure it was.
func errorCodeName(err error) string {
	if _, ok := errors.AsType[*unreachableError](err); ok {
		return "unavailable"
	}
	switch {
	case errors.Is(err, eventstore.ErrOutcomeUnknown):
		return "outcome_unknown"
	case errors.Is(err, aggregate.ErrOrderNotFound), errors.Is(err, errGroupNotFound):
		return "not_found"
	case exitCode(err) == exitUsage:
		return "usage"
	}
	return "failed"
}

// errorOutput is the one JSON object --json prints on stdout when a command fails.
type errorOutput struct {
	Error struct {
		Code     string `json:"code"`     // usage, not_found, unavailable, outcome_unknown, failed
		Message  string `json:"message"`  // the line printed on stderr, without "orders: "
		ExitCode int    `json:"exitCode"` // the process's exit status
	} `json:"error"`
}

func errorJSON(err error, msg string) errorOutput {
	var out errorOutput
	out.Error.Code = errorCodeName(err)
	out.Error.Message = msg
	out.Error.ExitCode = exitCode(err)
	return out
}

// message is the one line printed for err, without the "orders: " prefix. An unreachable node
// is one short sentence; --verbose adds the client's detail.
func (a *app) message(err error) string {
	if u, ok := errors.AsType[*unreachableError](err); ok && !a.verbose {
		return u.short()
	}
	return message(err)
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
