package eventlog

import "errors"

// ErrCorrupt says a stored value could not be decoded.
var ErrCorrupt = errors.New("eventlog: corrupt record")
