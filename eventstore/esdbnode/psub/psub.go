// Package psub is the embedded node's persistent-subscription engine and its
// gRPC service (event_store.client.persistent_subscriptions.PersistentSubscriptions),
// faithful to EventStoreDB 24.10 as seen by the official client.
//
// Contract. The node calls New, then Start before serving, registers Service
// with its gRPC server, advertises SupportedMethods in ServerFeatures, and calls
// Close (after the gRPC server has stopped) before closing the log.
//
// Groups. A group is keyed "<stream>::<group>" ("$all::<group>" for $all
// groups, which may carry an event-type or stream-name filter, prefixes or a
// regular expression, on top of EventStoreDB's DefaultAllFilter). Every
// setting keeps its server-side meaning: the start position (End resolved and
// fixed when the group is created), resolve links, message timeout, max retry
// count, checkpoint after / min / max count, max subscriber count, live and
// history buffer sizes, read batch size, extra statistics, and the strategies
// RoundRobin, DispatchToSingle, Pinned and PinnedByCorrelation.
//
// Reading. A group behind the source reads a page of read_batch_size into
// its buffer only when the whole page fits in the history buffer, as
// EventStoreDB does; reads from the log are of at least 500 records (at most
// the history buffer), the surplus handed out by later pages, so a small
// read batch does not pay a log read per page. Messages are encoded for the
// wire by each consumer's sender, outside the group's lock, a whole
// queue before the first is sent, so that they leave in a burst.
//
// Delivery is at least once. A consumer holds at most buffer_size unacked
// messages. Nack Retry/Unknown and timeouts redeliver with retry_count+1 and
// park once retry_count reached max_retry_count; nack Park parks; nack Skip
// drops; nack Stop is accepted and ignored, like EventStoreDB (the messages
// time out). A consumer that goes away has its unacked messages re-queued with
// retry_count+1 (no park check). Options.Tick drives timeouts and time-based
// checkpoints (message_timeout 0 expires at the next tick).
//
// Streams, as on a real node (all written with Log.Append, durable on return):
//   - "$persistentSubscriptionConfig": one "$PersistentConfig" JSON event with
//     every group after each create/update/delete ($$ metadata $maxCount 2);
//     read back on Start and RestartSubsystem.
//   - "$persistentsubscription-<key>-checkpoint": "$SubscriptionCheckpoint"
//     events whose JSON data is a string, "<n>" or "C:<p>/P:<p>" ($maxCount 2).
//     The checkpoint is the sequence number just before the oldest message not
//     yet finished (acked, skipped or durably parked), never ahead of it, so
//     after a crash nothing is skipped; a group resumes after its checkpoint.
//   - "$persistentsubscription-<key>-parked": one "$>" link per parked message,
//     data "<n>@<stream>", JSON metadata {"Added","Reason","SubscriptionEventNumber"}.
//     ReplayParked redelivers them (retry_count 0, event = original, link =
//     the parked link, acked by the link id) page by page through the normal
//     in-flight limits, and sets "$tb" on the parked stream past each page once
//     all its messages are finished.
//
// Deleting a group soft-deletes its checkpoint and parked streams.
package psub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/google/uuid"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

// Options configures the engine. Zero fields take the defaults given.
type Options struct {
	Logger *slog.Logger     // nil: discard
	Now    func() time.Time // nil: time.Now
	Tick   time.Duration    // timer for timeouts and checkpoints; 0: DefaultTick
	NewID  func() uuid.UUID // ids of the events the engine writes; nil: uuid.New
}

// DefaultTick is the engine's timer period when Options.Tick is zero.
const DefaultTick = time.Second

// Validate reports whether o can be used (zero values are fine: they take defaults).
func (o Options) Validate() error {
	if o.Tick < 0 {
		return fmt.Errorf("%w: tick %v", ErrInvalidOptions, o.Tick)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick == 0 {
		o.Tick = DefaultTick
	}
	if o.NewID == nil {
		o.NewID = uuid.New
	}
	return o
}

// Service implements the PersistentSubscriptions gRPC service over a log.
type Service struct {
	persistent.UnimplementedPersistentSubscriptionsServer
	log  *eventlog.Log
	opts Options

	// baseCtx bounds the engine's own work (readers, timers, writes); Close
	// cancels it. Like http.Server's base context, it is not a request's.
	baseCtx    context.Context
	cancelBase context.CancelFunc

	mu      sync.Mutex // guards groups, started, closed; serialises config changes
	groups  map[string]*group
	started bool
	closed  bool
}

var _ persistent.PersistentSubscriptionsServer = (*Service)(nil)

// New returns an engine over log; it validates opts and starts nothing.
func New(log *eventlog.Log, opts Options) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{log: log, opts: opts.withDefaults(), baseCtx: ctx, cancelBase: cancel, groups: map[string]*group{}}, nil
}

func (s *Service) now() time.Time       { return s.opts.Now() }
func (s *Service) newID() uuid.UUID     { return s.opts.NewID() }
func (s *Service) tick() time.Duration  { return s.opts.Tick }
func (s *Service) logger() *slog.Logger { return s.opts.Logger }

// Start loads the groups from the config stream and starts them.
func (s *Service) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return nil
	}
	if err := s.loadLocked(); err != nil {
		return err
	}
	s.started = true
	return nil
}

// loadLocked creates and starts every group of the config stream.
func (s *Service) loadLocked() error {
	entries, err := s.readConfig(s.baseCtx)
	if err != nil {
		return err
	}
	for _, e := range entries {
		g, err := newGroup(s, e)
		if err != nil {
			s.logger().Warn("persistent subscription not loaded", "stream", e.Stream, "group", e.Group, "err", err)
			continue
		}
		if err := g.start(); err != nil {
			s.stopAllLocked(false)
			return err
		}
		s.groups[g.key] = g
	}
	return nil
}

func (s *Service) stopAllLocked(final bool) {
	var wg sync.WaitGroup
	for _, g := range s.groups {
		wg.Go(func() { g.stop(final) })
	}
	wg.Wait()
	clear(s.groups)
}

// Close drops every connected consumer and stops the groups (writing their
// pending parks and checkpoints); idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.stopAllLocked(true)
	s.cancelBase()
	return nil
}

// SupportedMethods lists the lower-cased method names of this service that are
// implemented, for ServerFeatures (each advertised with features ["stream","all"]).
func SupportedMethods() []string {
	return []string{"create", "update", "delete", "read", "getinfo", "list", "replayparked", "restartsubsystem"}
}

func (s *Service) readyLocked() error {
	if s.closed || !s.started {
		return ErrClosed
	}
	return nil
}

func (s *Service) lookup(stream, group string) (*group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readyLocked(); err != nil {
		return nil, newGroupError(err, stream, group, "")
	}
	g := s.groups[groupKey(stream, group)]
	if g == nil {
		return nil, newGroupError(ErrNotFound, stream, group, "")
	}
	return g, nil
}

// ---- config stream ----

func (s *Service) readConfig(ctx context.Context) ([]configEntry, error) {
	recs, err := s.log.ReadStream(ctx, configStream, eventlog.Backwards, math.MaxUint64, 1)
	if errors.Is(err, eventlog.ErrStreamNotFound) || (err == nil && len(recs) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("psub: read config: %w", err)
	}
	var pc persistedConfig
	if err := json.Unmarshal(recs[0].Data, &pc); err != nil {
		return nil, fmt.Errorf("psub: config event: %w", err)
	}
	return pc.Entries, nil
}

// writeConfigLocked writes the whole set of groups (with extra in place of,
// or added to, the group of the same key, and without drop).
func (s *Service) writeConfigLocked(ctx context.Context, extra *configEntry, drop string) error {
	byKey := map[string]configEntry{}
	for k, g := range s.groups {
		byKey[k] = g.cfg
	}
	if extra != nil {
		byKey[groupKey(extra.Stream, extra.Group)] = *extra
	}
	delete(byKey, drop)
	pc := persistedConfig{Version: "2", Updated: s.now().UTC().Format(time.RFC3339Nano), UpdatedBy: "admin", Entries: []configEntry{}}
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		pc.Entries = append(pc.Entries, byKey[k])
	}
	data, err := json.Marshal(pc)
	if err != nil {
		return err
	}
	if _, err := s.log.Append(ctx, configStream, eventlog.Expected{Kind: eventlog.ExpectAny}, []eventlog.Proposed{{
		ID: s.newID(), Type: configEventType, IsJSON: true, Data: data,
	}}); err != nil {
		return fmt.Errorf("psub: write config: %w", err)
	}
	return s.ensureMaxCount(ctx, configStream)
}

// ensureMaxCount gives stream the metadata $maxCount 2 if it has none,
// keeping a $tb the log set when it un-deleted the stream.
func (s *Service) ensureMaxCount(ctx context.Context, stream string) error {
	st, err := s.log.Stream(ctx, stream)
	if err != nil {
		return err
	}
	if st.Metadata.MaxCount != nil {
		return nil
	}
	md := map[string]any{"$maxCount": 2}
	if st.Metadata.TruncateBefore != nil {
		md["$tb"] = *st.Metadata.TruncateBefore
	}
	return s.writeMetadata(ctx, stream, md)
}

// writeTruncateBefore sets $tb on stream's metadata, keeping its other keys.
func (s *Service) writeTruncateBefore(ctx context.Context, stream string, tb uint64) error {
	st, err := s.log.Stream(ctx, stream)
	if err != nil {
		return err
	}
	md := map[string]any{}
	if len(st.Metadata.Raw) > 0 {
		_ = json.Unmarshal(st.Metadata.Raw, &md)
	}
	md["$tb"] = tb
	return s.writeMetadata(ctx, stream, md)
}

func (s *Service) writeMetadata(ctx context.Context, stream string, md map[string]any) error {
	data, err := json.Marshal(md)
	if err != nil {
		return err
	}
	_, err = s.log.Append(ctx, "$$"+stream, eventlog.Expected{Kind: eventlog.ExpectAny}, []eventlog.Proposed{{
		ID: s.newID(), Type: eventlog.TypeMetadata, IsJSON: true, Data: data,
	}})
	return err
}

// softDelete deletes a group's own stream; a stream never written is fine.
func (s *Service) softDelete(ctx context.Context, stream string) {
	_, err := s.log.Delete(ctx, stream, eventlog.Expected{Kind: eventlog.ExpectAny})
	var wev *eventlog.WrongExpectedVersionError
	var del *eventlog.StreamDeletedError
	if err != nil && !errors.As(err, &wev) && !errors.As(err, &del) && !errors.Is(err, eventlog.ErrStreamNotFound) {
		s.logger().Warn("persistent subscription: delete stream failed", "stream", stream, "err", err)
	}
}

// ---- operations ----

// resolveStart turns a requested start into the first sequence number to
// deliver, fixing End now.
func (s *Service) resolveStart(ctx context.Context, e *configEntry, sp startSpec) error {
	e.StartFrom = sp.String(e.isAll())
	switch sp.kind {
	case 's':
		e.StartPosition = 0
	case 'e':
		if e.isAll() {
			e.StartPosition = s.log.Head() + 1
			return nil
		}
		st, err := s.log.Stream(ctx, e.Stream)
		if err != nil {
			return err
		}
		e.StartPosition = uint64(max(st.LastRevision, -1) + 1)
		if st.Tombstoned {
			e.StartPosition = eventlog.TombstoneRevision
		}
	default:
		if e.isAll() {
			if sp.prep > sp.pos || sp.pos > s.log.Head() || sp.pos > math.MaxInt64 {
				return newGroupError(ErrInvalid, e.Stream, e.Group, "invalid start position")
			}
		} else if sp.pos > math.MaxInt64 {
			return newGroupError(ErrInvalid, e.Stream, e.Group, "invalid start revision")
		}
		e.StartPosition = sp.pos
	}
	return nil
}

func (s *Service) create(ctx context.Context, e configEntry, sp startSpec) error {
	if e.Stream == allStream && e.Filter == nil && sp.kind == 0 {
		return newGroupError(ErrInvalid, e.Stream, e.Group, "no start position")
	}
	if err := e.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readyLocked(); err != nil {
		return newGroupError(err, e.Stream, e.Group, "")
	}
	key := groupKey(e.Stream, e.Group)
	if s.groups[key] != nil {
		return newGroupError(ErrExists, e.Stream, e.Group, "")
	}
	if err := s.resolveStart(ctx, &e, sp); err != nil {
		return err
	}
	g, err := newGroup(s, e)
	if err != nil {
		return err
	}
	if err := s.writeConfigLocked(ctx, &e, ""); err != nil {
		return err
	}
	if err := g.start(); err != nil {
		return err
	}
	s.groups[key] = g
	return nil
}

func (s *Service) update(ctx context.Context, stream, groupName string, f settingsFields, sp *startSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readyLocked(); err != nil {
		return newGroupError(err, stream, groupName, "")
	}
	key := groupKey(stream, groupName)
	old := s.groups[key]
	if old == nil {
		return newGroupError(ErrNotFound, stream, groupName, "")
	}
	e := old.cfg // keeps the filter of a $all group
	f.apply(&e)
	if err := e.validate(); err != nil {
		return err
	}
	if sp != nil {
		if err := s.resolveStart(ctx, &e, *sp); err != nil {
			return err
		}
	}
	g, err := newGroup(s, e)
	if err != nil {
		return err
	}
	old.stop(true)
	delete(s.groups, key)
	if err := s.writeConfigLocked(ctx, &e, ""); err != nil {
		// Keep serving the old settings.
		if g2, err2 := newGroup(s, old.cfg); err2 == nil && g2.start() == nil {
			s.groups[key] = g2
		}
		return err
	}
	if err := g.start(); err != nil {
		return err
	}
	s.groups[key] = g
	return nil
}

func (s *Service) delete(ctx context.Context, stream, groupName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readyLocked(); err != nil {
		return newGroupError(err, stream, groupName, "")
	}
	key := groupKey(stream, groupName)
	g := s.groups[key]
	if g == nil {
		return newGroupError(ErrNotFound, stream, groupName, "")
	}
	g.stop(false)
	delete(s.groups, key)
	if err := s.writeConfigLocked(ctx, nil, key); err != nil {
		return err
	}
	s.softDelete(ctx, g.ckStream)
	s.softDelete(ctx, g.parkStream)
	return nil
}

func (s *Service) restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readyLocked(); err != nil {
		return newGroupError(err, "", "", "the persistent subscription subsystem is not started")
	}
	s.stopAllLocked(true)
	return s.loadLocked()
}

// list returns the groups of stream ("" for all), sorted by key.
func (s *Service) list(stream string, all bool) []*group {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*group
	for _, k := range slices.Sorted(maps.Keys(s.groups)) {
		if g := s.groups[k]; all || g.cfg.Stream == stream {
			out = append(out, g)
		}
	}
	return out
}
