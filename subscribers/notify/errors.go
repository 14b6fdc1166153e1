package notify

import "errors"

var (
	// ErrInvalidConfig: New, NewSMTPTransport or NewFileTransport was given an unusable value.
	ErrInvalidConfig = errors.New("notify: invalid configuration")
	// ErrInvalidSMTPURL: the SMTP URL is not smtp://[user:pass@]host[:port].
	ErrInvalidSMTPURL = errors.New("notify: invalid SMTP URL")
	// ErrInvalidMessage: a message cannot be built (empty or malformed address, no body).
	// Sending such a message can never succeed: Classify marks it permanent.
	ErrInvalidMessage = errors.New("notify: invalid message")
	// ErrLoadOrder: the order of a notified event could not be read or folded.
	ErrLoadOrder = errors.New("notify: load order")
	// ErrSend: a transport failed to deliver a message. Temporary unless marked with
	// subscribers.Permanent.
	ErrSend = errors.New("notify: send")
	// ErrSentLog: the sent-log failed to answer or to record.
	ErrSentLog = errors.New("notify: sent-log")
	// ErrNotSent: the sent-log has no record of the event.
	ErrNotSent = errors.New("notify: not in the sent-log")
)
