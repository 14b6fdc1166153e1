package bench

import "errors"

var (
	// ErrEmptyLog is returned by ReadAll when $all holds no event at all, so
	// there is nothing to read however long it tries.
	ErrEmptyLog = errors.New("bench: $all is empty")

	// ErrInvalidArgument is returned for a workload size or option that cannot
	// be run (n < 1, writers < 1, batch < 1, a missing data directory).
	ErrInvalidArgument = errors.New("bench: invalid argument")

	// ErrStubStarted is returned by Stub.Start when called twice.
	ErrStubStarted = errors.New("bench: stub already started")

	// ErrStubClosed is returned by Stub.Start after Close.
	ErrStubClosed = errors.New("bench: stub closed")

	// ErrNoNATSServer is returned by FindNATSServer when no nats-server
	// binary is found; the suite then reports NATS as not run.
	ErrNoNATSServer = errors.New("bench: no nats-server binary found")

	// ErrWrongExpectedRevision is returned by the PostgreSQL target's Append
	// when the stream is not at the expected revision.
	ErrWrongExpectedRevision = errors.New("bench: wrong expected revision")
)
