package projections

import "errors"

var (
	// ErrOutOfOrder: an event arrived before its predecessor in the same order stream was
	// applied. It is retryable: the consumer loop nacks it and the server redelivers it later,
	// by which time the predecessor (in flight elsewhere) has usually been applied.
	ErrOutOfOrder = errors.New("projections: event before its predecessor")
	// ErrUnknownProjection: a projection name that is not one of Names().
	ErrUnknownProjection = errors.New("projections: unknown projection")
	// ErrBadURL: Open was given a database URL it cannot use.
	ErrBadURL = errors.New("projections: bad database URL")
	// ErrMalformedEvent: an event of an order stream could not be decoded. The loop parks it.
	ErrMalformedEvent = errors.New("projections: malformed event")
	// ErrSchemaTooNew: the database was migrated by a newer version of this program.
	ErrSchemaTooNew = errors.New("projections: database schema is newer than this program")
	// ErrLog: reading the EventStoreDB log ($all) failed.
	ErrLog = errors.New("projections: reading the event log")
	// ErrRebuildRunning: another rebuild of the same projection holds the rebuild lock.
	ErrRebuildRunning = errors.New("projections: a rebuild of this projection is running")
)

// ErrNotFound: the read model holds no such row (yet).
var ErrNotFound = errors.New("projections: not found")

// ErrConcurrentUpdate: another transaction (of another process on the same PostgreSQL)
// changed a row this batch read; the batch is rolled back and retried.
var ErrConcurrentUpdate = errors.New("projections: concurrent update of the same order")
