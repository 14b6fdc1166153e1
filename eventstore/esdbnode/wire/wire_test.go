package wire_test

import (
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
	"github.com/orderstore/orders/eventstore/esdbnode/wire"
)

// refRecorded is the reflection-built RecordedEvent the hand encoder must match.
func refRecorded(r *eventlog.Record, pos uint64, stringIDs bool) *persistent.ReadResp_ReadEvent_RecordedEvent {
	if r == nil {
		return nil
	}
	id := &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(r.ID[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(r.ID[8:])),
	}}}
	if stringIDs {
		id = &shared.UUID{Value: &shared.UUID_String_{String_: r.ID.String()}}
	}
	ct := "application/octet-stream"
	if r.IsJSON {
		ct = "application/json"
	}
	return &persistent.ReadResp_ReadEvent_RecordedEvent{
		Id: id, StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.Stream)},
		StreamRevision: r.Revision, PreparePosition: pos, CommitPosition: pos,
		Metadata:       map[string]string{"type": r.Type, "content-type": ct, "created": strconv.FormatInt(r.Created.UnixNano()/100, 10)},
		CustomMetadata: nonEmpty(r.Metadata), Data: nonEmpty(r.Data),
	}
}

func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// TestPersistentEventMatchesProto: what PersistentEvent writes decodes to the message the
// reflection path builds, with and without link, string or structured ids, any retry count.
func TestPersistentEventMatchesProto(t *testing.T) {
	now := time.Now().UTC()
	ev := &eventlog.Record{Position: 77, Stream: "order-1", Revision: 3, ID: uuid.New(), Type: "OrderPaid", IsJSON: true,
		Created: now, Metadata: []byte(`{"m":1}`), Data: []byte(`{"d":2}`)}
	link := &eventlog.Record{Position: 90, Stream: "$ce-order", Revision: 12, ID: uuid.New(), Type: "$>", Created: now, Data: []byte("3@order-1")}
	empty := &eventlog.Record{Position: 1, Stream: "s", ID: uuid.New(), Type: "t", Created: now}
	for _, c := range []struct {
		name      string
		ev, link  *eventlog.Record
		pos       uint64
		retry     int32
		stringIDs bool
	}{
		{"plain", ev, nil, 77, 0, false},
		{"retried string ids", ev, nil, 77, 4, true},
		{"link", ev, link, 90, 1, false},
		{"empty data", empty, nil, 1, 0, false},
		{"zero position", empty, nil, 0, 300, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := &persistent.ReadResp{Content: &persistent.ReadResp_Event{Event: &persistent.ReadResp_ReadEvent{
				Event: refRecorded(c.ev, c.pos, c.stringIDs), Link: refRecorded(c.link, c.pos, c.stringIDs),
				Position: &persistent.ReadResp_ReadEvent_CommitPosition{CommitPosition: c.pos},
				Count:    &persistent.ReadResp_ReadEvent_RetryCount{RetryCount: c.retry},
			}}}
			var got persistent.ReadResp
			if err := proto.Unmarshal(wire.PersistentEvent(c.ev, c.link, c.pos, c.retry, c.stringIDs).B, &got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(want, &got) {
				t.Fatalf("decoded\n%v\nwant\n%v", &got, want)
			}
		})
	}
}
