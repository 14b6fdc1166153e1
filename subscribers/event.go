package subscribers

import (
	"context"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// Event is one delivered event (from a persistent subscription).
type Event struct {
	AckID      uuid.UUID // OriginalEvent().EventID: what is acked/nacked (the link's id when resolved from a link)
	ID         uuid.UUID // the event's own id
	Stream     string
	Revision   uint64
	Position   uint64 // commit position of the event in $all
	Type       string
	Data       []byte
	Metadata   []byte // user metadata (JSON)
	Created    time.Time
	RetryCount int // as reported by the server (0 on first delivery)
}

// Handler handles one event. It must be idempotent: delivery is at least once.
type Handler func(ctx context.Context, ev Event) error

// BatchHandler handles several events in one go (e.g. one SQL transaction), all or nothing.
type BatchHandler func(ctx context.Context, evs []Event) error

// fromAppeared converts what the client delivers. The event is the resolved target when
// there is one; an unresolved link is delivered as the link itself.
func fromAppeared(a *esdb.EventAppeared) Event {
	orig := a.Event.OriginalEvent()
	rec := a.Event.Event
	if rec == nil {
		rec = orig
	}
	return Event{
		AckID:      orig.EventID,
		ID:         rec.EventID,
		Stream:     rec.StreamID,
		Revision:   rec.EventNumber,
		Position:   rec.Position.Commit,
		Type:       rec.EventType,
		Data:       rec.Data,
		Metadata:   rec.UserMetadata,
		Created:    rec.CreatedDate,
		RetryCount: a.RetryCount,
	}
}

// ackRefs builds what the client's Ack and Nack take: they only read OriginalEvent().EventID.
func ackRefs(evs []Event) []*esdb.ResolvedEvent {
	refs := make([]*esdb.ResolvedEvent, len(evs))
	for i, ev := range evs {
		refs[i] = &esdb.ResolvedEvent{Event: &esdb.RecordedEvent{EventID: ev.AckID}}
	}
	return refs
}
