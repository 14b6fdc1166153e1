package esdbnode

import (
	"fmt"
	"time"
)

// MaxReceiveMessageSize is the largest gRPC message the node accepts, as a
// real node's Streams service does (16 MiB minus 10,000 bytes, the largest
// log record). One proposed event is one message, so an append of a single
// event up to this size is answered with the node's own
// maximum-append-size-exceeded error, and a larger message with gRPC's
// ResourceExhausted, as a real node answers it.
const MaxReceiveMessageSize = 16*1024*1024 - 10000

// Limits bounds every resource a client can hold on the node. The zero value
// of a field means its default (DefaultLimits); negative values are invalid.
type Limits struct {
	// MaxConnections caps simultaneous TCP connections (gRPC and HTTP
	// together). A connection beyond the cap is answered "503 Service
	// Unavailable: too many connections" and closed at once.
	MaxConnections int
	// PrefaceTimeout bounds how long a new connection may stay silent
	// before its first bytes (which tell gRPC from HTTP/1.1) arrive; with TLS
	// it also bounds the handshake.
	PrefaceTimeout time.Duration
	// ReadHeaderTimeout bounds how long an HTTP/1.1 request's headers may
	// take to arrive.
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes caps the size of an HTTP/1.1 request's headers and of
	// a gRPC call's header list.
	MaxHeaderBytes int
	// MinBodyRate is the minimum average rate, in bytes per second, at
	// which an HTTP/1.1 request body must arrive once BodyRateGrace has
	// passed (Kestrel's MinRequestBodyDataRate); a slower request gets 408
	// and its connection is closed.
	MinBodyRate int
	// BodyRateGrace is how long a request body may take before MinBodyRate
	// applies.
	BodyRateGrace time.Duration
	// WriteTimeout bounds how long an HTTP/1.1 response may take to write.
	WriteTimeout time.Duration
	// IdleTimeout closes an HTTP/1.1 keep-alive connection idle this long.
	IdleTimeout time.Duration

	// MaxConcurrentStreams caps the gRPC calls open at once on one
	// connection (Kestrel's MaxStreamsPerConnection).
	MaxConcurrentStreams uint32
	// KeepaliveMinTime is the shortest ping interval a gRPC client may use;
	// a client pinging more often is disconnected (too_many_pings). The
	// official client pings every 10 s, with or without calls.
	KeepaliveMinTime time.Duration
	// KeepaliveTime and KeepaliveTimeout: the node pings a gRPC connection
	// silent for KeepaliveTime and closes it if no answer comes within
	// KeepaliveTimeout.
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
	// MaxConnectionIdle closes a gRPC connection that has had no call for
	// this long (with a GOAWAY: the official client reconnects on its next
	// call).
	MaxConnectionIdle time.Duration
	// MaxConnectionAge, if positive, ends a gRPC connection this old (GOAWAY,
	// then MaxConnectionAgeGrace for its calls to finish). Zero (the
	// default) means no age limit: a subscription may live for days.
	MaxConnectionAge      time.Duration
	MaxConnectionAgeGrace time.Duration
}

// DefaultLimits are the limits used for zero fields: loose enough for a
// server with many clients, tight enough that a few hostile clients cannot
// exhaust a laptop.
var DefaultLimits = Limits{
	MaxConnections:        1024,
	PrefaceTimeout:        10 * time.Second,
	ReadHeaderTimeout:     10 * time.Second,
	MaxHeaderBytes:        64 << 10,
	MinBodyRate:           240,
	BodyRateGrace:         5 * time.Second,
	WriteTimeout:          60 * time.Second,
	IdleTimeout:           2 * time.Minute,
	MaxConcurrentStreams:  100,
	KeepaliveMinTime:      5 * time.Second,
	KeepaliveTime:         30 * time.Second,
	KeepaliveTimeout:      10 * time.Second,
	MaxConnectionIdle:     time.Hour,
	MaxConnectionAgeGrace: 30 * time.Second,
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&l.MaxConnections, d.MaxConnections)
	setInt(&l.MaxHeaderBytes, d.MaxHeaderBytes)
	setInt(&l.MinBodyRate, d.MinBodyRate)
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = d.MaxConcurrentStreams
	}
	setDur(&l.PrefaceTimeout, d.PrefaceTimeout)
	setDur(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	setDur(&l.BodyRateGrace, d.BodyRateGrace)
	setDur(&l.WriteTimeout, d.WriteTimeout)
	setDur(&l.IdleTimeout, d.IdleTimeout)
	setDur(&l.KeepaliveMinTime, d.KeepaliveMinTime)
	setDur(&l.KeepaliveTime, d.KeepaliveTime)
	setDur(&l.KeepaliveTimeout, d.KeepaliveTimeout)
	setDur(&l.MaxConnectionIdle, d.MaxConnectionIdle)
	setDur(&l.MaxConnectionAgeGrace, d.MaxConnectionAgeGrace)
	return l
}

// validate rejects limits that would turn a bound off by accident.
func (l Limits) validate() error {
	l = l.withDefaults()
	switch {
	case l.MaxConnections < 1:
		return fmt.Errorf("%w: max connections %d", ErrBadLimits, l.MaxConnections)
	case l.MaxHeaderBytes < 1024:
		return fmt.Errorf("%w: max header bytes %d (at least 1024)", ErrBadLimits, l.MaxHeaderBytes)
	case l.MinBodyRate < 1:
		return fmt.Errorf("%w: min body rate %d", ErrBadLimits, l.MinBodyRate)
	case l.PrefaceTimeout < 0, l.ReadHeaderTimeout < 0, l.BodyRateGrace < 0, l.WriteTimeout < 0,
		l.IdleTimeout < 0, l.KeepaliveMinTime < 0, l.KeepaliveTime < 0, l.KeepaliveTimeout < 0,
		l.MaxConnectionIdle < 0, l.MaxConnectionAge < 0, l.MaxConnectionAgeGrace < 0:
		return fmt.Errorf("%w: durations must not be negative", ErrBadLimits)
	}
	return nil
}
