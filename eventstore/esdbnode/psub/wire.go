package psub

import (
	"encoding/binary"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

// toProtoUUID encodes id structured (big-endian int64 halves of the RFC 4122
// bytes) or as its string form.
func toProtoUUID(id uuid.UUID, asString bool) *shared.UUID {
	if asString {
		return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

// fromProtoUUID decodes either form; ok is false for a malformed id.
func fromProtoUUID(u *shared.UUID) (uuid.UUID, bool) {
	if s := u.GetStructured(); s != nil {
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], uint64(s.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(id[8:], uint64(s.GetLeastSignificantBits()))
		return id, true
	}
	id, err := uuid.Parse(u.GetString_())
	return id, err == nil
}

// toRecorded converts a log record; pos is the original (link-if-present)
// position, put on both records as a real node does.
func toRecorded(r *eventlog.Record, pos uint64, stringIDs bool) *persistent.ReadResp_ReadEvent_RecordedEvent {
	if r == nil {
		return nil
	}
	ct := "application/octet-stream"
	if r.IsJSON {
		ct = "application/json"
	}
	return &persistent.ReadResp_ReadEvent_RecordedEvent{
		Id:               toProtoUUID(r.ID, stringIDs),
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.Stream)},
		StreamRevision:   r.Revision,
		PreparePosition:  pos,
		CommitPosition:   pos,
		Metadata: map[string]string{
			"type":         r.Type,
			"content-type": ct,
			"created":      strconv.FormatInt(r.Created.UnixNano()/100, 10),
		},
		CustomMetadata: r.Metadata,
		Data:           r.Data,
	}
}

// toReadResp builds the event message for m with its current retry count.
func toReadResp(m *message, stringIDs bool) *persistent.ReadResp {
	return &persistent.ReadResp{Content: &persistent.ReadResp_Event{Event: &persistent.ReadResp_ReadEvent{
		Event:    toRecorded(m.event, m.pos, stringIDs),
		Link:     toRecorded(m.link, m.pos, stringIDs),
		Position: &persistent.ReadResp_ReadEvent_CommitPosition{CommitPosition: m.pos},
		Count:    &persistent.ReadResp_ReadEvent_RetryCount{RetryCount: int32(m.retry)},
	}}}
}
