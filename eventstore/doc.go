// Package eventstore is how the order store reaches EventStoreDB: the connection, the event
// codec, the order repository, and the translation of the official client's errors into this
// package's sentinels.
//
// # Contract
//
// Connect turns a connection string ("esdb://127.0.0.1:2113?tls=false") into a client of the
// official Go client (github.com/EventStore/EventStore-Client-Go/v4). The client connects
// lazily, on its first call; an unreachable node makes that call fail with ErrUnavailable
// after the client's own discovery attempts (about one to two seconds).
//
// Every order lives in the stream StreamName(id) = "order-<id>". Events are stored with their
// aggregate type name (aggregate.TypeOrderPlaced, ...), content type application/json, the
// aggregate's JSON encoding as data, and a JSON metadata object carrying EventStoreDB's own
// "$correlationId" and "$causationId" keys (so system projections and the PinnedByCorrelation
// strategy work on them), see Metadata. Encode and Decode are the only codec; projections and
// senders use Decode as well.
//
// Repository.Execute loads an order by reading its whole stream, lets a decide function run
// commands on it, and appends the pending changes with the loaded revision as the expected
// revision ("no stream" for a new order). When another writer appended in between, the append
// fails with wrong expected version; Execute then reloads and decides again, up to
// RepositoryConfig.MaxAttempts times in all, and fails with ErrConcurrency after that. A
// decision that records no change (paying again with the same reference) appends nothing and
// succeeds. Errors returned by decide (the aggregate's sentinels) are returned unchanged, so
// errors.Is works on them.
//
// # Retries
//
// Repository.ExecuteCommand runs a Command: an order id, a command name and the arguments that
// decide its events. Its events get ids derived from the command (Command.EventID, UUIDv5),
// not fresh ones, so running the same command again is safe: when the loaded stream holds the
// command's first event already, nothing is decided or appended and the Result says
// AlreadyRecorded; when an identical run appends between the load and the append, the node's
// idempotency (the same event ids after the same expected revision: success, nothing written)
// does the same. Execute gives events fresh ids and is not safe to retry after
// ErrOutcomeUnknown.
//
// An append that fails before its request is complete (connection refused, client closed,
// stream not opened, a message not sent) fails with ErrNotAppended (and ErrUnavailable): the
// node cannot have written it. An append sent in full whose answer is lost (connection cut,
// EOF or reset; the time ran out) fails with ErrOutcomeUnknown: the events may be in the
// stream. Every other error of Execute and ExecuteCommand means nothing was appended.
//
// # Errors
//
// The client's errors are translated once, in this package: callers see ErrOrderNotFound,
// ErrUnavailable, ErrNotAppended, ErrOutcomeUnknown, ErrStreamDeleted, ErrConcurrency
// (wrapping a *WrongExpectedVersionError), ErrMalformedEvent or ErrEventStore, never a client
// error type. The client's message is kept
// in the text of the error.
package eventstore
