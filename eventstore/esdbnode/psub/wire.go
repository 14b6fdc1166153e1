package psub

import (
	"encoding/binary"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"

	"github.com/orderstore/orders/eventstore/esdbnode/wire"
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

// eventMsg is an event message in the protobuf wire format, queued for a consumer.
type eventMsg = wire.Msg

// toReadResp encodes the event message for q, by hand (package wire, as the
// node's Streams reads). The server must send it with wire's codec.
func toReadResp(q queued, stringIDs bool) *eventMsg {
	return wire.PersistentEvent(q.m.event, q.m.link, q.m.pos, q.retry, stringIDs)
}
