// Package notify is the e-mail sender of the order store: a subscriber with its own
// persistent subscription group that sends a payment confirmation for every OrderPaid event
// and a shipping notice for every OrderShipped event.
//
// # Contract
//
// A Sender runs a subscribers.Consumer on the group Config.Group (default
// "notifications-email") over $all, filtered to the order streams (prefix "order-"), from
// the start of the log, with the RoundRobin strategy, so several senders in several processes
// share the work and a payment stored just before a crash still gets its e-mail when a sender
// comes back. Projections have their own groups: rebuilding them never sends mail.
//
// For each OrderPaid or OrderShipped event the handler runs the steps below. Other event
// types of the aggregate cause no notice and are acknowledged; a type the aggregate does not
// list either (appended by a newer writer) is acknowledged too, but logged once per type and
// counted in Stats.Unknown, so serve's /metrics shows it. For a notice, the handler:
//
//  1. asks the SentLog whether the event id was already sent; if so it does nothing (this is
//     what makes a re-created group, a replay of parked messages or a redelivery silent);
//  2. reads the order's stream through the official client, folding it up to the event's
//     revision (never from the read models: a rebuild or a lagging projection must not
//     matter), and renders the message from a text/template: order id, lines with quantity
//     and unit price, total formatted from minor units with the currency;
//  3. sends it through the Transport with a Message-ID derived from the event id
//     (MessageID: "<kind>.<event-id>@<domain>");
//  4. records the event id in the SentLog right after the send succeeded; the consumer then
//     acknowledges the event.
//
// A crash between 3 and 4 makes the event come back, and the e-mail is sent again with the
// same Message-ID, so a receiver can drop the duplicate; FileTransport absorbs it by
// overwriting the same file. A RecordSent that fails is retried without sending again (the
// sender remembers, in memory, what it sent but could not record), and RecordSent runs even
// when the sender is being stopped, so neither a sent-log hiccup nor a graceful shutdown
// causes a duplicate. This is the one duplicate the design allows:
// without crashes no e-mail is sent twice, since a persistent subscription hands each event to
// one consumer at a time and the SentLog is checked before every send.
//
// Failures are classified once, by the transport (see Classify): a temporary failure
// (connection refused, timeout, an SMTP 4xx reply, the node unreachable while loading the
// order) is returned as is and retried by the consumer with backoff, up to
// Config.MaxAttempts deliveries (default 20, backoff up to 30 s, so an SMTP outage of
// several minutes parks nothing); a permanent one (SMTP 5xx, a malformed address, an order
// that cannot be loaded) is marked with subscribers.Permanent and parked at once with its
// reason. Parked events come back with ReplayParkedMessages (orders subscriptions
// replay-parked notifications-email).
//
// # Sent-log
//
// SQLSentLog keeps the sent-log in the table sent_messages (event id, Message-ID, time sent)
// of a SQLite or PostgreSQL database. serve opens it on the read-model database, with the two
// pools of projections.Store.DB; OpenSentLog creates the table if it is missing. Rebuilds of
// the read models never touch it.
//
// # Transports
//
// SMTPTransport sends through github.com/wneessen/go-mail, one connection per message,
// STARTTLS when the server offers it, SMTP AUTH when the URL carries user:pass
// (smtp://[user:pass@]host:port). FileTransport writes <dir>/<message-id>.eml atomically
// (temporary file, fsync, rename, fsync of the directory), so a laptop needs no mail server.
package notify
