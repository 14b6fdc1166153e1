package eventlog

// This file is the contract between the log and its users (the gRPC layer in
// package esdbnode and the persistent-subscription engine). Signatures here are
// stable; change them only together with every caller.

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// TombstoneRevision is the revision of a tombstone record (long.MaxValue in
// EventStoreDB), and the "$tb" value that marks a soft-deleted stream.
const TombstoneRevision = uint64(math.MaxInt64)

// Event type names with a meaning to the log.
const (
	TypeMetadata      = "$metadata"      // events of $$X streams
	TypeStreamDeleted = "$streamDeleted" // the tombstone record
	TypeLink          = "$>"             // link events: data "<n>@<stream>"
)

// Direction of a read.
type Direction int

const (
	Forwards Direction = iota
	Backwards
)

// Record is one committed event as stored in the log.
type Record struct {
	Position uint64    // log position, > 0, strictly increasing in commit order (commit == prepare)
	Stream   string    // stream name
	Revision uint64    // event number in Stream; TombstoneRevision for a tombstone
	ID       uuid.UUID // event id as the client sent it
	Type     string    // event type
	IsJSON   bool      // content-type was application/json
	Created  time.Time // commit time (UTC), from Options.Now
	Data     []byte
	Metadata []byte // user (custom) metadata
}

// Proposed is an event offered to Append.
type Proposed struct {
	ID       uuid.UUID
	Type     string
	IsJSON   bool
	Data     []byte
	Metadata []byte
}

// ExpectedKind selects the optimistic-concurrency check of an append, delete
// or tombstone.
type ExpectedKind int

const (
	ExpectAny ExpectedKind = iota
	ExpectNoStream
	ExpectStreamExists
	ExpectRevision
)

// Expected is the expected state of a stream (Revision is used only with
// ExpectRevision).
type Expected struct {
	Kind     ExpectedKind
	Revision uint64
}

func (e Expected) String() string {
	switch e.Kind {
	case ExpectAny:
		return "any"
	case ExpectNoStream:
		return "no stream"
	case ExpectStreamExists:
		return "stream exists"
	default:
		return fmt.Sprint(e.Revision)
	}
}

// AppendResult is the outcome of a successful Append.
type AppendResult struct {
	// Revision is the stream's current revision after the append: the last
	// event written (or, for an idempotent re-append, the last matching
	// event). -1 when the stream has no events (zero events appended to an
	// absent stream).
	Revision int64
	// Position is the log position of the last event written (or matched);
	// 0 when nothing was written and nothing matched (the wire's no_position).
	Position uint64
}

// StreamState describes a stream as the read side sees it.
type StreamState struct {
	// LastRevision is the last event number ever written to the stream, -1
	// if none. Numbering survives soft deletes.
	LastRevision int64
	// Tombstoned: hard-deleted; reads and writes fail with StreamDeletedError.
	Tombstoned bool
	// SoftDeleted: metadata "$tb" is TombstoneRevision; reads say not found.
	SoftDeleted bool
	// Metadata is the effective metadata (last JSON event of $$stream, parsed);
	// zero value when none or unparsable.
	Metadata StreamMetadata
}

// StreamMetadata holds the keys of $$X the server interprets. Raw keeps the
// whole JSON object (custom keys included) for re-writing.
type StreamMetadata struct {
	MaxAge         *time.Duration // $maxAge, seconds on the wire
	MaxCount       *int64         // $maxCount
	TruncateBefore *int64         // $tb
	Raw            []byte         // the JSON object as stored, nil if none
}

// DefaultIndexCacheSize is the index's block cache when
// Options.IndexCacheSize is 0.
const DefaultIndexCacheSize = 32 << 20

// Options configures Open.
type Options struct {
	// FS is the filesystem of the chunk files and of the Pebble index; nil
	// means the real disk (vfs.Default). Crash tests pass a crashable
	// in-memory FS.
	FS vfs.FS
	// Now is the clock for Record.Created; nil means time.Now.
	Now func() time.Time
	// MaxBatch caps how many append requests one group commit takes (0: 256).
	MaxBatch int
	// NewID makes the ids of the records the log writes itself (soft-delete
	// and un-delete metadata events, tombstones); nil means uuid.New.
	NewID func() uuid.UUID
	// ChunkSize is the size of each chunk file (0: DefaultChunkSize); it is
	// rounded up to 4 KiB. A record larger than a chunk gets a chunk of its
	// own, as large as it needs.
	ChunkSize int64
	// IndexCacheSize is the Pebble index's block cache in bytes (0:
	// DefaultIndexCacheSize; negative: none). It holds the index and filter
	// blocks and the entries that stream reads, head lookups and idempotency
	// checks read. It comes on top of the memtables: Pebble charges each
	// memtable it keeps to its cache, so Open sizes that cache as this plus
	// two memtables.
	IndexCacheSize int64
}

// WrongExpectedVersionError says the stream was not in the expected state.
type WrongExpectedVersionError struct {
	Stream   string
	Expected Expected
	Current  int64 // -1: the stream has no events
}

func (e *WrongExpectedVersionError) Error() string {
	cur := "no stream"
	if e.Current >= 0 {
		cur = fmt.Sprint(e.Current)
	}
	return fmt.Sprintf("wrong expected version for stream %q: expected %s, current %s", e.Stream, e.Expected, cur)
}

// StreamDeletedError says the stream was tombstoned (or, for
// ExpectStreamExists on a soft-deleted stream, is deleted).
type StreamDeletedError struct{ Stream string }

func (e *StreamDeletedError) Error() string {
	return fmt.Sprintf("Event stream '%s' is deleted.", e.Stream)
}

var (
	// ErrStreamNotFound: a stream read of an absent or soft-deleted stream.
	ErrStreamNotFound = errors.New("eventlog: stream not found")
	// ErrClosed: the log is closed.
	ErrClosed = errors.New("eventlog: closed")
	// ErrInvalid: a request the log cannot take (empty stream name, empty
	// event type, stream "$all").
	ErrInvalid = errors.New("eventlog: invalid request")
)

// The methods of *Log (implemented in the other files of this package):
//
//	Open(dir string, opts Options) (*Log, error)
//	(*Log).Close() error
//
//	// Append checks exp against the stream (EventStoreDB's decision table,
//	// idempotent re-append by event id), writes the events with consecutive
//	// revisions and positions, and returns once they are synced to disk
//	// (group commit with other concurrent appends). Zero events is a pure
//	// check. Appending to a soft-deleted stream un-deletes it (writes the
//	// "$tb" metadata event as EventStoreDB does).
//	(*Log).Append(ctx context.Context, stream string, exp Expected, events []Proposed) (AppendResult, error)
//	// Delete soft-deletes (metadata {"$tb": MaxInt64}); returns the metadata record's position.
//	(*Log).Delete(ctx context.Context, stream string, exp Expected) (uint64, error)
//	// Tombstone hard-deletes; returns the tombstone record's position.
//	(*Log).Tombstone(ctx context.Context, stream string, exp Expected) (uint64, error)
//
//	// Head is the position of the last durable record, 0 for an empty log.
//	(*Log).Head() uint64
//	// Wait blocks until Head() > after, ctx is done (ctx.Err()) or the log
//	// closes (ErrClosed). Subscriptions use it to go live without a gap.
//	(*Log).Wait(ctx context.Context, after uint64) error
//
//	// ReadStream returns up to limit visible events (metadata rules applied:
//	// $maxCount, $maxAge, $tb; metastreams have $maxCount 1). Forwards: revision
//	// >= from, ascending. Backwards: revision <= from (from past the end means
//	// the last), descending. ErrStreamNotFound for absent or soft-deleted
//	// streams, *StreamDeletedError for tombstoned ones (and for $$X of a
//	// tombstoned X).
//	(*Log).ReadStream(ctx context.Context, stream string, dir Direction, from uint64, limit int) ([]Record, error)
//	// ReadEvent returns one visible event (for link resolution); ok false if
//	// it is missing, hidden by metadata, or the stream is deleted.
//	(*Log).ReadEvent(ctx context.Context, stream string, revision uint64) (rec Record, ok bool, err error)
//	// ReadAll returns up to limit records of the whole log, ignoring stream
//	// metadata and deletion. Forwards: position >= from, ascending.
//	// Backwards: position < from, descending (from = math.MaxUint64: from the end).
//	(*Log).ReadAll(ctx context.Context, dir Direction, from uint64, limit int) ([]Record, error)
//	// Stream reports a stream's state (absent: LastRevision -1).
//	(*Log).Stream(ctx context.Context, stream string) (StreamState, error)
//	// Streams lists stream names (for the UI): up to limit names after
//	// `after` in byte order.
//	(*Log).Streams(ctx context.Context, after string, limit int) ([]string, error)
