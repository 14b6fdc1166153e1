// Package subscribers is the one persistent-subscription consumer loop that every subscriber
// of the order store (projections, notification senders) runs. It knows nothing about SQL or
// mail: a subscriber is a Handler (or a BatchHandler) plus a Group.
//
// # Contract
//
// A Consumer connects to a persistent subscription group of the official EventStoreDB client
// (github.com/EventStore/EventStore-Client-Go/v4), creating the group when it is missing
// (AlreadyExists is fine; an existing group is used as it is, its settings are not changed).
// It hands every delivered event to the handler and acknowledges it only after the handler
// returned nil, never before. Delivery is at least once: an event can be handled again after a
// reconnect, a restart, a message timeout or a parked-message replay, and persistent
// subscriptions do not guarantee order, so handlers must be idempotent.
//
// On a handler error (a panic in the handler is recovered and counts as an error):
//
//   - an error marked with Permanent parks the event at once, the error text as the reason;
//   - otherwise, when this was attempt Config.MaxAttempts or later (attempt = the server's
//     retry count plus one), the event is parked with "attempt N of M: <error>" as the reason;
//   - otherwise it is nacked with Retry after Config.Backoff(attempt). The delay is a timer:
//     other events keep flowing meanwhile. The server redelivers it with its retry count + 1.
//
// Parked events land in the group's parked stream ("$persistentsubscription-<stream>::<group>-parked",
// "$all" for $all groups) where the server's reason reads "Client explicitly NAK'ed message.\n"
// followed by ours; they can be replayed with ReplayParkedMessages.
//
// With a BatchHandler the consumer gathers what is already received (up to Config.MaxBatch,
// waiting at most Config.BatchWait for more) and calls the handler once; on success it acks
// the whole batch with one Ack. On failure it handles the batch's events again one at a time
// through the same handler (a one-event slice each), so a poison event is isolated and parked
// while the others are applied: a BatchHandler must therefore be all or nothing (one SQL
// transaction, for example).
//
// Handling is sequential within a Consumer: one event (or one batch) at a time. Run several
// Consumers on the same group (the default strategy is RoundRobin) to spread the load.
//
// # Connections
//
// The official client v4.2.0 has a bug: once its reconnect/discovery fails, its internal
// connection goroutine exits and every later call on that client blocks forever. The
// consumer therefore calls Dial for a fresh *esdb.Client on every connection, uses it from one
// goroutine at a time, and closes it when the connection ends for any reason (node restart,
// network cut, the group dropped by an update or a subsystem restart, an error creating or
// joining the group). It then waits Config.Reconnect(attempt) and starts again; the attempt
// count restarts after every connection that got as far as the server's confirmation.
// Never share the client Dial returns with other goroutines.
//
// Run blocks until its context is cancelled, then stops receiving, lets the handler in
// progress finish (its context is Run's, so it sees the cancellation), acks it if it
// succeeded, closes the subscription (the server re-queues whatever is unacked) and the
// client, waits for its goroutines and returns nil. A cancellation while the client is in its
// own discovery waits for the discovery to give up (about a second when the port refuses
// connections; the client's discovery ignores contexts).
//
// Stats gives counters and the last error for health checks and metrics; it is safe to call
// from any goroutine.
package subscribers
