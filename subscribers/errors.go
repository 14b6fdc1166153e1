package subscribers

import "errors"

var (
	// ErrInvalidConfig: New or NewBatch was given an unusable Config, Group, Dial or handler.
	ErrInvalidConfig = errors.New("subscribers: invalid configuration")
	// ErrRunning: Run was called while another Run of the same Consumer is in progress.
	ErrRunning = errors.New("subscribers: consumer already running")
	// ErrDial: Dial failed. Run returns it (wrapped), since Dial is not expected to contact
	// the node (the official client connects lazily) and so fails only on bad configuration.
	ErrDial = errors.New("subscribers: dial")
	// ErrConnection: connecting to the node, creating or joining the group failed, or the
	// subscription was dropped. Run never returns it; it reconnects, and the text lands in
	// Stats.LastError.
	ErrConnection = errors.New("subscribers: connection")
	// ErrPanic: a handler panicked; it wraps nothing, the panic value is in the text.
	ErrPanic = errors.New("subscribers: handler panicked")
)

// Permanent marks err as not worth retrying: the loop parks the event at once, with err's
// text as the reason. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err (or an error it wraps) was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }
