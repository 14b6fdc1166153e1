package eventstore

import (
	"encoding/json"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orderstore/orders/aggregate"
)

// ContentTypeJSON is the content type of every event this package writes.
const ContentTypeJSON = "application/json"

// Metadata is the JSON metadata stored with every event. The keys are EventStoreDB's own, so
// the server's $by_correlation_id projection and the PinnedByCorrelation strategy see them.
type Metadata struct {
	// CorrelationID ties together everything that followed from one request: the command's
	// id for events it recorded, copied unchanged into whatever reacts to them.
	CorrelationID string `json:"$correlationId,omitempty"`
	// CausationID is the id of what directly caused the event: the command's id, or the id
	// of the event a subscriber reacted to.
	CausationID string `json:"$causationId,omitempty"`
	// Source names the writer ("orders-cli", "serve", a sender's name); informational.
	Source string `json:"source,omitempty"`
}

// CommandMetadata is the metadata of events recorded by a command with the given id: the
// command starts a correlation, and causes the events.
func CommandMetadata(commandID, source string) Metadata {
	return Metadata{CorrelationID: commandID, CausationID: commandID, Source: source}
}

// CausedBy is the metadata for something written in reaction to the event with id eventID
// whose metadata was m: same correlation, caused by that event.
func (m Metadata) CausedBy(eventID uuid.UUID, source string) Metadata {
	return Metadata{CorrelationID: m.CorrelationID, CausationID: eventID.String(), Source: source}
}

// Encode builds the client's event for e with the given event id (the id is what the node's
// idempotency check keys on, so retries of one append must reuse it).
func Encode(id uuid.UUID, e aggregate.Event, md Metadata) (esdb.EventData, error) {
	data, err := aggregate.EncodeEvent(e)
	if err != nil {
		return esdb.EventData{}, fmt.Errorf("eventstore: encode: %w", err)
	}
	meta, err := json.Marshal(md)
	if err != nil {
		return esdb.EventData{}, fmt.Errorf("eventstore: encode metadata: %w", err)
	}
	return esdb.EventData{
		EventID:     id,
		EventType:   e.EventType(),
		ContentType: esdb.ContentTypeJson,
		Data:        data,
		Metadata:    meta,
	}, nil
}

// Decode turns a recorded event into the aggregate's event and its metadata. It fails with
// ErrMalformedEvent, also wrapping the aggregate's error (aggregate.ErrUnknownEventType,
// aggregate.ErrInvalidEventData) when there is one, so a consumer can tell an event type it
// does not know from a broken event. Empty metadata is the zero Metadata.
func Decode(rec *esdb.RecordedEvent) (aggregate.Event, Metadata, error) {
	if rec == nil {
		return nil, Metadata{}, fmt.Errorf("%w: nil event", ErrMalformedEvent)
	}
	where := fmt.Sprintf("%d@%s", rec.EventNumber, rec.StreamID)
	if rec.ContentType != ContentTypeJSON {
		return nil, Metadata{}, fmt.Errorf("%w: %s: content type %q, want %q", ErrMalformedEvent, where, rec.ContentType, ContentTypeJSON)
	}
	e, err := aggregate.DecodeEvent(rec.EventType, rec.Data)
	if err != nil {
		return nil, Metadata{}, fmt.Errorf("%w: %s: %w", ErrMalformedEvent, where, err)
	}
	var md Metadata
	if len(rec.UserMetadata) > 0 {
		if err := json.Unmarshal(rec.UserMetadata, &md); err != nil {
			return nil, Metadata{}, fmt.Errorf("%w: %s: metadata: %w", ErrMalformedEvent, where, err)
		}
	}
	return e, md, nil
}
