package eventstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orderstore/orders/aggregate"
)

// StreamPrefix is the prefix of every order stream; the rest of the name is the order id.
const StreamPrefix = "order-"

// StreamName is the name of the stream holding the order with the given id.
func StreamName(orderID string) string { return StreamPrefix + orderID }

// Defaults of RepositoryConfig.
const (
	DefaultMaxAttempts = 5
	DefaultPageSize    = 256
)

// RepositoryConfig configures a Repository. The zero value is valid: zero fields take their
// defaults.
type RepositoryConfig struct {
	// MaxAttempts bounds the load-decide-append cycles of one Execute (the first attempt
	// included). Default DefaultMaxAttempts.
	MaxAttempts int
	// PageSize is the number of events read per request when loading. Default
	// DefaultPageSize.
	PageSize uint64
	// NewID returns the id of each appended event. Default uuid.New.
	NewID func() uuid.UUID
}

// Validate reports a configuration value out of range.
func (c RepositoryConfig) Validate() error {
	if c.MaxAttempts < 0 {
		return fmt.Errorf("%w: MaxAttempts %d < 0", ErrInvalidConfig, c.MaxAttempts)
	}
	return nil
}

func (c RepositoryConfig) withDefaults() RepositoryConfig {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.NewID == nil {
		c.NewID = uuid.New
	}
	return c
}

// Repository loads orders from their streams and appends the events their commands decide.
// It is safe for concurrent use.
type Repository struct {
	client *esdb.Client
	cfg    RepositoryConfig
}

// NewRepository returns a repository writing through client.
func NewRepository(client *esdb.Client, cfg RepositoryConfig) (*Repository, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Repository{client: client, cfg: cfg.withDefaults()}, nil
}

// Recorded is one event of an order's stream as stored.
type Recorded struct {
	EventID  uuid.UUID
	Stream   string
	Revision uint64    // event number in Stream, from 0
	Position uint64    // commit position in $all
	Type     string    // event type name
	Created  time.Time // when the node recorded it
	Event    aggregate.Event
	Metadata Metadata
}

// History is an order's stream in revision order.
type History []Recorded

// Load reads the order's stream and folds it. It fails with ErrOrderNotFound when the stream
// does not exist.
func (r *Repository) Load(ctx context.Context, orderID string) (*aggregate.Order, History, error) {
	o, h, err := r.load(ctx, orderID)
	if err != nil {
		return nil, nil, err
	}
	if len(h) == 0 {
		return nil, nil, fmt.Errorf("%w: %s", ErrOrderNotFound, orderID)
	}
	return o, h, nil
}

// Result is the outcome of a successful Execute.
type Result struct {
	// Order is the state after the decision, its changes committed.
	Order *aggregate.Order
	// Revision is the stream's last revision after Execute (-1: the stream does not exist).
	Revision int64
	// Position is the commit position of the last appended event; 0 if nothing was appended.
	Position uint64
	// Appended is the number of events appended; 0 when the decision recorded no change or
	// the command was already recorded. When an identical ExecuteCommand appended the same
	// events after the same revision a moment earlier, the node answers this append as if it
	// had written them (its idempotent success looks like a write to the client), so two
	// racing identical runs may both report them; the stream holds them once.
	Appended int
	// AlreadyRecorded: the command's events were found in the stream (an earlier run of the
	// same command, whose answer may have been lost, recorded them), so nothing was appended.
	// Only ExecuteCommand sets it.
	AlreadyRecorded bool
	// Attempts is the number of load-decide-append cycles it took, from 1.
	Attempts int
}

// Command is the identity of one command on one order: its name and the arguments that
// decide the events it records (not the time it runs at). Two runs of the same Command are
// the same command: the events they append get the same ids (see EventID), so a retry
// appends nothing, whether the first run's answer arrived or not.
type Command struct {
	OrderID string
	Name    string   // "place", "pay", "ship", "cancel", ...
	Args    []string // canonical arguments, in a fixed order
}

// commandNamespace is the UUIDv5 namespace of command event ids (itself the UUIDv5 of the
// project's URL in the URL namespace).
var commandNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/orderstore/orders/command-event-ids"))

// EventID is the id of the i-th event (from 0) the command appends: a UUIDv5 (SHA-1, RFC
// 9562) of the order id, the name, the arguments and i, each length-prefixed so that no two
// different commands share an encoding.
func (c Command) EventID(i int) uuid.UUID {
	var b []byte
	field := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	field(c.OrderID)
	field(c.Name)
	b = binary.AppendUvarint(b, uint64(len(c.Args)))
	for _, a := range c.Args {
		field(a)
	}
	b = binary.AppendUvarint(b, uint64(i))
	return uuid.NewSHA1(commandNamespace, b)
}

// Execute loads the order (a new, empty order when its stream does not exist), calls decide
// on it, and appends the changes decide recorded with the loaded revision as the expected
// revision. On a concurrent append it starts over, up to MaxAttempts times in all, then fails
// with ErrConcurrency. decide must be safe to call several times; its error is returned as is
// and nothing is appended. md is stored with every appended event. The events get ids from
// RepositoryConfig.NewID: a retry after ErrOutcomeUnknown may append them twice; commands
// that must be safe to retry use ExecuteCommand.
//
// Every error but ErrOutcomeUnknown means that nothing was appended.
func (r *Repository) Execute(ctx context.Context, orderID string, md Metadata, decide func(*aggregate.Order) error) (Result, error) {
	return r.execute(ctx, orderID, nil, md, decide)
}

// ExecuteCommand is Execute for the command c, made safe to retry: the events get the ids
// c.EventID(0), c.EventID(1), ... When the loaded stream already holds c's first event, the
// command was recorded by an earlier run: ExecuteCommand decides nothing, appends nothing and
// returns a Result with AlreadyRecorded. Otherwise, when an identical run appends between the
// load and the append, the node's own idempotency (the same event ids after the same
// expected revision) turns the append into a success that writes nothing. A run with other
// arguments has other ids and meets the aggregate's rules (ErrOrderExists, ErrAlreadyPaid,
// ...) as any command does.
//
// Every error but ErrOutcomeUnknown means that nothing was appended by this call. After
// ErrOutcomeUnknown, running the same command again tells what happened.
func (r *Repository) ExecuteCommand(ctx context.Context, c Command, md Metadata, decide func(*aggregate.Order) error) (Result, error) {
	return r.execute(ctx, c.OrderID, &c, md, decide)
}

func (r *Repository) execute(ctx context.Context, orderID string, c *Command, md Metadata, decide func(*aggregate.Order) error) (Result, error) {
	stream := StreamName(orderID)
	var conflict *WrongExpectedVersionError
	for attempt := 1; attempt <= r.cfg.MaxAttempts; attempt++ {
		o, h, err := r.load(ctx, orderID)
		if err != nil {
			return Result{}, err
		}
		if conflict != nil {
			conflict.Actual = o.Version()
		}
		if c != nil && h.contains(c.EventID(0)) {
			return Result{Order: o, Revision: o.Version(), AlreadyRecorded: true, Attempts: attempt}, nil
		}
		if err := decide(o); err != nil {
			return Result{}, err
		}
		changes := o.Changes()
		if len(changes) == 0 {
			return Result{Order: o, Revision: o.Version(), Attempts: attempt}, nil
		}
		events := make([]esdb.EventData, len(changes))
		for i, e := range changes {
			id := r.cfg.NewID()
			if c != nil {
				id = c.EventID(i)
			}
			if events[i], err = Encode(id, e, md); err != nil {
				return Result{}, err
			}
		}
		wr, err := r.client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{
			ExpectedRevision: expectedRevision(o.Version()),
		}, events...)
		if err != nil {
			err = translateAppend(ctx, "append to "+stream, err)
			if errors.Is(err, ErrWrongExpectedVersion) {
				conflict = &WrongExpectedVersionError{Stream: stream, Expected: o.Version(), Actual: RevisionUnknown}
				continue
			}
			return Result{}, err
		}
		o.MarkCommitted()
		return Result{
			Order:    o,
			Revision: int64(wr.NextExpectedVersion),
			Position: wr.CommitPosition,
			Appended: len(events),
			Attempts: attempt,
		}, nil
	}
	return Result{}, fmt.Errorf("%w: %s: gave up after %d attempts: %w", ErrConcurrency, stream, r.cfg.MaxAttempts, conflict)
}

// contains reports whether an event of h has the given id.
func (h History) contains(id uuid.UUID) bool {
	for _, rec := range h {
		if rec.EventID == id {
			return true
		}
	}
	return false
}

// expectedRevision is the one place where the aggregate's version becomes the append's
// expected revision. Both count from 0 (the first event of a stream has revision 0 and an
// order that applied it has version 0), so they are equal; the aggregate's -1 ("no events")
// is the client's NoStream, since EventStoreDB has no revision -1 on the wire (revisions are
// uint64).
func expectedRevision(version int64) esdb.ExpectedRevision {
	if version < 0 {
		return esdb.NoStream{}
	}
	return esdb.Revision(uint64(version))
}

// load reads and folds the order's stream; a missing stream is an order with no history.
func (r *Repository) load(ctx context.Context, orderID string) (*aggregate.Order, History, error) {
	h, err := r.ReadStream(ctx, StreamName(orderID))
	if errors.Is(err, ErrStreamNotFound) {
		return aggregate.New(orderID), nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	events := make([]aggregate.Event, len(h))
	for i, rec := range h {
		events[i] = rec.Event
	}
	o, err := aggregate.Load(orderID, events)
	if err != nil {
		return nil, nil, fmt.Errorf("eventstore: load %s: %w", StreamName(orderID), err)
	}
	// The stream revisions must be dense from 0 for the version to be the last revision; a
	// truncated or scavenged stream would silently break the expected-revision check.
	if last := int64(h[len(h)-1].Revision); o.Version() != last {
		return nil, nil, fmt.Errorf("eventstore: load %s: %w: version %d but last revision %d",
			StreamName(orderID), aggregate.ErrCorruptHistory, o.Version(), last)
	}
	return o, h, nil
}

// ReadStream reads a whole stream forwards and decodes every event. It fails with
// ErrStreamNotFound when the stream does not exist and ErrMalformedEvent when an event cannot
// be decoded.
func (r *Repository) ReadStream(ctx context.Context, stream string) (History, error) {
	var h History
	var from esdb.StreamPosition = esdb.Start{}
	for {
		n, err := r.readPage(ctx, stream, from, &h)
		if err != nil {
			return nil, err
		}
		if n < r.cfg.PageSize {
			return h, nil
		}
		from = esdb.Revision(h[len(h)-1].Revision + 1)
	}
}

func (r *Repository) readPage(ctx context.Context, stream string, from esdb.StreamPosition, h *History) (uint64, error) {
	rs, err := r.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: from}, r.cfg.PageSize)
	if err != nil {
		return 0, translate(ctx, "read "+stream, err)
	}
	defer rs.Close()
	var n uint64
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, translate(ctx, "read "+stream, err)
		}
		rec := ev.OriginalEvent()
		e, md, err := Decode(rec)
		if err != nil {
			return 0, err
		}
		*h = append(*h, Recorded{
			EventID:  rec.EventID,
			Stream:   rec.StreamID,
			Revision: rec.EventNumber,
			Position: rec.Position.Commit,
			Type:     rec.EventType,
			Created:  rec.CreatedDate,
			Event:    e,
			Metadata: md,
		})
		n++
	}
}
