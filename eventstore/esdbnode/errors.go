package esdbnode

import "errors"

// Configuration and lifecycle errors.
var (
	// ErrNoDataDir: Config.DataDir is empty.
	ErrNoDataDir = errors.New("esdbnode: data directory required")
	// ErrBadAddr: Config.Addr is not a host:port.
	ErrBadAddr = errors.New("esdbnode: invalid listen address")
	// ErrNotLoopback: Config.Addr is not a loopback address and Config.Insecure is false.
	ErrNotLoopback = errors.New("esdbnode: refusing to bind a non-loopback address without a certificate or Insecure (the node would have no TLS and no users)")
	// ErrStarted: Start or Handle called after Start.
	ErrStarted = errors.New("esdbnode: server already started")
	// ErrClosed: Start called after Close.
	ErrClosed = errors.New("esdbnode: server closed")
	// ErrBadCertificate: the node's certificate, key or trusted roots
	// cannot be used (unreadable, malformed, not chaining to a root).
	ErrBadCertificate = errors.New("esdbnode: bad certificate")
	// ErrBadLimits: a field of Config.Limits is out of range.
	ErrBadLimits = errors.New("esdbnode: invalid limits")
)

// Request errors; answer (status.go) maps them to gRPC InvalidArgument with the
// trailers EventStoreDB sends.
var (
	// ErrInvalidRequest: a malformed or unsupported request.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrMissingMetadata: a proposed event lacks the "type" or "content-type" metadata.
	ErrMissingMetadata = errors.New("missing required metadata property: type, content-type")
	// ErrAppendTooLarge: the events of one append exceed MaxAppendSize bytes of data.
	ErrAppendTooLarge = errors.New("maximum append size exceeded")
)
