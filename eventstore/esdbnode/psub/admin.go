package psub

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

// This file is the engine's Go-level admin surface for in-process tools (the
// node's web UI): snapshots of the groups, their parked messages, and a
// replay of parked messages, without going through gRPC. Reading a snapshot
// does not reset the per-second measurements GetInfo reports.

// GroupInfo is a snapshot of one group: its settings, its state and where it
// stands against its source.
type GroupInfo struct {
	Stream string // source stream, "$all" for $all groups
	Group  string
	Key    string // "<stream>::<group>"
	Filter string // a $all group's filter, described; "" if none

	// Settings.
	StartFrom          string // as the client gave it ("-1" End, "0" Start, "<n>", "C:<c>/P:<p>")
	ResolveLinkTos     bool
	ExtraStatistics    bool
	MessageTimeout     time.Duration
	MaxRetryCount      int32
	LiveBufferSize     int32
	HistoryBufferSize  int32
	ReadBatchSize      int32
	CheckPointAfter    time.Duration
	MinCheckPointCount int32
	MaxCheckPointCount int32
	MaxSubscriberCount int32 // 0: unlimited
	Strategy           string

	// State.
	Status      string // "Live", "Behind", "NotReady" or "Faulted", with ", ReplayingParkedMessages" while replaying
	Connections []ConnectionInfo
	InFlight    int // messages sent and not yet acked or nacked
	RetryBuffer int // messages waiting to be redelivered
	Buffered    int // messages read from the source, not yet dispatched

	// Positions: event numbers for stream groups, log positions for $all
	// groups; -1 when there is none.
	LastCheckpointed int64
	LastKnown        int64 // the last event read from the source
	Head             int64 // the source's last event (stream) or the log head: the position of the last record of $all, system records included ($all)
	// Behind is what the group still has to deliver: messages read and not yet acked (buffered,
	// to retry, in flight) plus the records of the source after the last one it read (for an
	// $all group an upper bound: the filter may skip some). 0 when the group is caught up,
	// whatever the checkpoint and other groups' checkpoint records in $all.
	Behind int64

	Parked           int64  // parked messages not yet replayed
	ParkedStream     string // "$persistentsubscription-<key>-parked"
	CheckpointStream string // "$persistentsubscription-<key>-checkpoint"
}

// IsAll reports whether the group subscribes to $all.
func (gi GroupInfo) IsAll() bool { return gi.Stream == allStream }

// FormatPosition renders a position of this group the way a real node does:
// an event number, or "C:<p>/P:<p>" for $all groups; "" for -1.
func (gi GroupInfo) FormatPosition(v int64) string {
	if v < 0 {
		return ""
	}
	return formatSeq(gi.IsAll(), v)
}

// ConnectionInfo is one connected consumer.
type ConnectionInfo struct {
	ID             uint64
	InFlight       int
	AvailableSlots int
	TotalItems     int64 // messages acked by this consumer
}

// ParkedMessage is one message of a group's parked stream.
type ParkedMessage struct {
	ParkedRevision uint64 // revision of the link in the parked stream
	Position       uint64 // log position of the link
	Added          time.Time
	Reason         string
	TargetStream   string // the parked event's stream
	TargetRevision uint64 // and revision
	// Event is the parked event, nil if it can no longer be read (deleted
	// or truncated).
	Event *eventlog.Record
}

// Groups returns a snapshot of every group, sorted by key. It fails only if
// the engine is not running.
func (s *Service) Groups(ctx context.Context) ([]GroupInfo, error) {
	s.mu.Lock()
	err := s.readyLocked()
	s.mu.Unlock()
	if err != nil {
		return nil, newGroupError(err, "", "", "")
	}
	groups := s.list("", true)
	out := make([]GroupInfo, 0, len(groups))
	for _, g := range groups {
		gi, err := g.snapshot(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, gi)
	}
	return out, nil
}

// Group returns a snapshot of one group; ErrNotFound if there is none.
func (s *Service) Group(ctx context.Context, stream, group string) (GroupInfo, error) {
	g, err := s.lookup(stream, group)
	if err != nil {
		return GroupInfo{}, err
	}
	return g.snapshot(ctx)
}

// ParkedMessages returns up to limit parked messages of a group not yet
// replayed, oldest first, with the events they point at.
func (s *Service) ParkedMessages(ctx context.Context, stream, group string, limit int) ([]ParkedMessage, error) {
	g, err := s.lookup(stream, group)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	recs, err := s.log.ReadStream(ctx, g.parkStream, eventlog.Forwards, 0, limit)
	var del *eventlog.StreamDeletedError
	if errors.Is(err, eventlog.ErrStreamNotFound) || errors.As(err, &del) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]ParkedMessage, 0, len(recs))
	for _, r := range recs {
		pm := ParkedMessage{ParkedRevision: r.Revision, Position: r.Position, Added: r.Created}
		var md struct {
			Added  time.Time `json:"Added"`
			Reason string    `json:"Reason"`
		}
		if json.Unmarshal(r.Metadata, &md) == nil {
			pm.Reason = md.Reason
			if !md.Added.IsZero() {
				pm.Added = md.Added
			}
		}
		target, n, ok := parseLink(r.Data)
		if ok {
			pm.TargetStream, pm.TargetRevision = target, n
			ev, found, err := s.log.ReadEvent(ctx, target, n)
			if err != nil {
				return nil, err
			}
			if found {
				pm.Event = &ev
			}
		}
		out = append(out, pm)
	}
	return out, nil
}

// ReplayParkedMessages starts replaying a group's parked messages with a
// parked-stream revision below stopAt (all of them when stopAt < 0), exactly
// like the ReplayParked call, and returns at once. A replay already running
// wins.
func (s *Service) ReplayParkedMessages(ctx context.Context, stream, group string, stopAt int64) error {
	g, err := s.lookup(stream, group)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err // the caller gave up: start nothing it did not wait for
	}
	g.replayParked(stopAt)
	return nil
}

// snapshot reads the group's state without resetting its measurements.
func (g *group) snapshot(ctx context.Context) (GroupInfo, error) {
	parked := g.parkedCount(ctx)
	head := int64(-1)
	if g.cfg.isAll() {
		head = int64(g.s.log.Head())
	} else {
		st, err := g.s.log.Stream(ctx, g.cfg.Stream)
		if err != nil {
			return GroupInfo{}, err
		}
		if !st.Tombstoned {
			head = st.LastRevision
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cfg
	gi := GroupInfo{
		Stream: c.Stream, Group: c.Group, Key: g.key,
		StartFrom:          c.StartFrom,
		ResolveLinkTos:     c.ResolveLinkTos,
		ExtraStatistics:    c.ExtraStatistics,
		MessageTimeout:     time.Duration(c.MessageTimeout) * time.Millisecond,
		MaxRetryCount:      c.MaxRetryCount,
		LiveBufferSize:     c.LiveBufferSize,
		HistoryBufferSize:  c.HistoryBufferSize,
		ReadBatchSize:      c.ReadBatchSize,
		CheckPointAfter:    time.Duration(c.CheckPointAfter) * time.Millisecond,
		MinCheckPointCount: c.MinCheckPointCount,
		MaxCheckPointCount: c.MaxCheckPointCount,
		MaxSubscriberCount: c.MaxSubscriberCount,
		Strategy:           c.NamedConsumerStrategy,
		InFlight:           len(g.outstanding),
		RetryBuffer:        len(g.retry),
		Buffered:           len(g.buffer),
		LastCheckpointed:   g.lastCk,
		LastKnown:          g.lastKnown,
		Head:               head,
		Behind:             int64(len(g.buffer)+len(g.retry)+len(g.outstanding)) + max(0, head-g.lastScanned),
		Parked:             parked,
		ParkedStream:       g.parkStream,
		CheckpointStream:   g.ckStream,
	}
	if f := c.Filter; f != nil {
		var b strings.Builder
		if f.OnEventType {
			b.WriteString("event type ")
		} else {
			b.WriteString("stream name ")
		}
		if f.Regex != "" {
			b.WriteString("matches " + f.Regex)
		} else {
			b.WriteString("starts with " + strings.Join(f.Prefixes, ", "))
		}
		gi.Filter = b.String()
	}
	st := g.statusWordsLocked()
	gi.Status = strings.Join(st, ", ")
	for _, cl := range g.clients {
		gi.Connections = append(gi.Connections, ConnectionInfo{
			ID: cl.id, InFlight: cl.inflight, AvailableSlots: cl.slots - cl.inflight, TotalItems: cl.total,
		})
	}
	return gi, nil
}
