// Package aggregate is the Order aggregate of the order store: commands decide, events fold
// into state. It is pure: standard library only, no I/O, no clock (callers pass now), no
// globals.
//
// # Contract
//
// An Order is built by New (nothing placed yet) or Load (New, then Apply for every event of
// the order's stream in stream order). A command (Place, Pay, Ship, Cancel) either returns an
// error and changes nothing, or records exactly the events it decided as pending Changes and
// applies them to the in-memory state, so a second command on the same instance sees the
// effect. A command that is a no-op (paying again with the same payment reference) returns
// nil and records nothing.
//
// Version is the stream revision of the last event applied from history, -1 for an order
// with no history. Pending changes never move it: the repository appends Changes() to the
// stream with expected revision Version() (-1 meaning "the stream must not exist"), and after
// a successful append may call MarkCommitted. This is the one place where the off-by-one
// between "events applied" and "stream revision" lives: revisions start at 0, so after n
// events Version() == n-1.
//
// # Validation order
//
// Every command checks the order's state first and its arguments second, so a command on an
// order in the wrong state reports the state error (ErrOrderNotFound, ErrOrderExists,
// ErrOrderCancelled, ErrAlreadyPaid, ErrNotPaid, ErrAlreadyShipped, ErrAlreadyCancelled)
// whatever its arguments. In detail:
//
//   - Place: ErrOrderExists; then ErrInvalidOrderID (empty id), ErrInvalidCustomer,
//     ErrInvalidCurrency, ErrNoLines, ErrInvalidLine (per line in order, then the total).
//   - Pay: ErrOrderNotFound; then a payment with the reference already recorded is a no-op
//     (nil, nothing recorded), also after shipping or cancelling, so a retried command gets the
//     same answer; then ErrOrderCancelled, ErrAlreadyPaid (another reference);
//     then ErrInvalidPaymentRef, ErrInvalidAmount, ErrAmountMismatch.
//   - Ship: ErrOrderNotFound, ErrOrderCancelled, ErrAlreadyShipped, ErrNotPaid.
//   - Cancel: ErrOrderNotFound, ErrAlreadyCancelled, ErrAlreadyShipped. Cancelling is allowed
//     while placed or paid; the reason is optional.
//
// # Invariants
//
// Money is in integer minor units of the order's currency (ISO 4217 code: three upper-case
// ASCII letters). A line has a non-blank SKU, Quantity > 0 and UnitPrice >= 0 (free items are
// allowed), but the order's total must be > 0, since a payment amount must be > 0 and equal
// to the total. Total = sum(Quantity*UnitPrice), computed with explicit int64 overflow checks
// (ErrInvalidLine on overflow). The customer is a bare e-mail address ("a@example.com", not
// "A <a@example.com>"), as accepted by net/mail.ParseAddress. Times are stored in UTC.
//
// # Events
//
// Event type names are the Type constants, fixed strings never derived from Go type names.
// Event data is the JSON encoding of the event struct (field names in the struct tags; see
// testdata/*.golden.json). DecodeEvent returns value types (OrderPlaced, not *OrderPlaced);
// Apply and EncodeEvent accept both. Folding is strict: an event that could not have been
// recorded by the commands here (another order's id, OrderPaid before OrderPlaced, shipping
// an unpaid order, ...) makes Apply and Load fail with ErrCorruptHistory.
package aggregate
