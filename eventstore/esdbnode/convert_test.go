package esdbnode

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

// recordedEvent is the reference for respEncoder: rec on the wire
// (protocol 2.4) built as a message, the way the node built it before events
// were encoded by hand. Metadata has exactly type, content-type and created
// (.NET ticks since the Unix epoch); the stream identifier is always set;
// commit == prepare.
func recordedEvent(rec *eventlog.Record, stringIDs bool) *streams.ReadResp_ReadEvent_RecordedEvent {
	ct := contentTypeBinary
	if rec.IsJSON {
		ct = contentTypeJSON
	}
	return &streams.ReadResp_ReadEvent_RecordedEvent{
		Id:               uuidProto(rec.ID, stringIDs),
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(rec.Stream)},
		StreamRevision:   rec.Revision,
		PreparePosition:  rec.Position,
		CommitPosition:   rec.Position,
		Metadata: map[string]string{
			"type":         rec.Type,
			"content-type": ct,
			"created":      strconv.FormatInt(rec.Created.UnixNano()/100, 10),
		},
		CustomMetadata: rec.Metadata,
		Data:           rec.Data,
	}
}

// refEventResp is the reference ReadResp of an event (ev and link may be nil).
func refEventResp(ev, link *eventlog.Record, pos uint64, stringIDs bool) *streams.ReadResp {
	re := &streams.ReadResp_ReadEvent{Position: &streams.ReadResp_ReadEvent_CommitPosition{CommitPosition: pos}}
	if ev != nil {
		re.Event = recordedEvent(ev, stringIDs)
	}
	if link != nil {
		re.Link = recordedEvent(link, stringIDs)
	}
	return &streams.ReadResp{Content: &streams.ReadResp_Event{Event: re}}
}

// checkEncoding decodes what respEncoder writes for (ev, link) and compares
// it with the reference message, in both id forms.
func checkEncoding(t *testing.T, enc *respEncoder, ev, link *eventlog.Record, pos uint64) {
	t.Helper()
	for _, stringIDs := range []bool{false, true} {
		raw := enc.event(ev, link, pos, stringIDs)
		var got streams.ReadResp
		require.NoError(t, proto.Unmarshal(raw.B, &got), "stringIDs=%v", stringIDs)
		want := refEventResp(ev, link, pos, stringIDs)
		require.True(t, proto.Equal(want, &got), "stringIDs=%v\nwant %v\ngot  %v", stringIDs, want, &got)
		require.Len(t, raw.B, proto.Size(want), "stringIDs=%v: same size as proto-go's encoding", stringIDs)
	}
}

func TestRespEncoderMatchesProto(t *testing.T) {
	created := time.Date(2026, 11, 29, 6, 0, 0, 123456700, time.UTC)
	full := eventlog.Record{
		Position: 1234567, Stream: "order-42", Revision: 7,
		ID:   uuid.MustParse("f47ac10b-58cc-4372-a567-0e02b2c3d479"),
		Type: "OrderPlaced", IsJSON: true, Created: created,
		Data: []byte(`{"id":42}`), Metadata: []byte(`{"by":"me"}`),
	}
	target := eventlog.Record{
		Position: 12, Stream: "order-1", Revision: 0,
		ID: uuid.MustParse("00000000-0000-0000-0000-000000000001"), Type: "OrderPaid", Created: created,
		Data: []byte{0, 1, 2},
	}
	link := eventlog.Record{
		Position: 99, Stream: "$ce-order", Revision: 3, ID: uuid.New(),
		Type: eventlog.TypeLink, Created: created, Data: []byte("0@order-1"),
	}
	tests := []struct {
		name     string
		ev, link *eventlog.Record
		pos      uint64
	}{
		{name: "event with data and metadata", ev: &full, pos: full.Position},
		{name: "binary event, no data, no metadata", ev: &eventlog.Record{Position: 1, Stream: "s", ID: uuid.New(), Type: "t", Created: created}, pos: 1},
		{name: "zero id, revision, position and time", ev: &eventlog.Record{Stream: "s", Type: "t", Created: time.Unix(0, 0).UTC()}, pos: 0},
		{name: "id halves with the sign bit", ev: &eventlog.Record{Position: 5, Stream: "s", Type: "t", Created: created,
			ID: uuid.MustParse("ffffffff-ffff-ffff-8000-000000000000")}, pos: 5},
		{name: "created before the epoch", ev: &eventlog.Record{Position: 5, Stream: "s", Type: "t", ID: uuid.New(),
			Created: time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC)}, pos: 5},
		{name: "tombstone revision and big position", ev: &eventlog.Record{Position: math.MaxInt64, Stream: "gone", Revision: eventlog.TombstoneRevision,
			ID: uuid.New(), Type: eventlog.TypeStreamDeleted, Created: created}, pos: math.MaxInt64},
		{name: "empty stream and type", ev: &eventlog.Record{Position: 3, ID: uuid.New(), Created: created}, pos: 3},
		{name: "resolved link", ev: &target, link: &link, pos: link.Position},
		{name: "unresolved link", link: &link, pos: link.Position},
		{name: "large data", ev: &eventlog.Record{Position: 8, Stream: "big", ID: uuid.New(), Type: "t", Created: created,
			Data: make([]byte, 70_000), Metadata: make([]byte, 300)}, pos: 8},
		{name: "long stream name", ev: &eventlog.Record{Position: 8, Stream: string(make([]byte, 200)), ID: uuid.New(), Type: "t", Created: created}, pos: 8},
	}
	var enc respEncoder // reused across cases, as a read reuses it
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkEncoding(t, &enc, tt.ev, tt.link, tt.pos)
		})
	}
}

func FuzzRespEncoder(f *testing.F) {
	f.Add(uint64(1), "s", uint64(0), []byte("0123456789abcdef"), "t", true, int64(0), []byte(`{}`), []byte(nil), false, uint64(1))
	f.Add(uint64(math.MaxInt64), "", uint64(eventlog.TombstoneRevision), make([]byte, 16), "", false, int64(-1), []byte(nil), []byte("m"), true, uint64(0))
	f.Fuzz(func(t *testing.T, pos uint64, stream string, rev uint64, id []byte, typ string, isJSON bool,
		created int64, data, meta []byte, withLink bool, linkPos uint64) {
		var u uuid.UUID
		copy(u[:], id)
		typ = strings.ToValidUTF8(typ, "?") // metadata values are proto strings: UTF-8
		rec := eventlog.Record{
			Position: pos, Stream: stream, Revision: rev, ID: u, Type: typ, IsJSON: isJSON,
			Created: time.Unix(0, created).UTC(), Data: nonEmpty(data), Metadata: nonEmpty(meta),
		}
		var enc respEncoder
		if withLink {
			link := rec
			link.Position, link.Type = linkPos, eventlog.TypeLink
			checkEncoding(t, &enc, &rec, &link, linkPos)
			checkEncoding(t, &enc, nil, &link, linkPos)
			return
		}
		checkEncoding(t, &enc, &rec, nil, pos)
	})
}

// nonEmpty is b, or nil if empty (as records carry empty data).
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func TestRawCodec(t *testing.T) {
	c := newRawCodec()
	require.Equal(t, "proto", c.Name())

	var enc respEncoder
	rec := eventlog.Record{Position: 9, Stream: "s", ID: uuid.New(), Type: "t", Created: time.Now().UTC(), Data: []byte("x")}
	raw := enc.event(&rec, nil, rec.Position, false)
	out, err := c.Marshal(raw)
	require.NoError(t, err)
	wire := out.Materialize()
	out.Free()
	require.Equal(t, raw.B, wire, "a raw message goes out as its bytes")
	enc.event(&eventlog.Record{Position: 10, Stream: "other", Type: "u"}, nil, 10, false)
	var got streams.ReadResp
	require.NoError(t, proto.Unmarshal(wire, &got), "what the codec returned does not alias the encoder's buffer")
	require.True(t, proto.Equal(refEventResp(&rec, nil, 9, false), &got))

	// Every other message goes through the proto codec, both ways.
	msg := checkpointResp(42)
	out, err = c.Marshal(msg)
	require.NoError(t, err)
	var back streams.ReadResp
	require.NoError(t, c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(out.Materialize())}, &back))
	out.Free()
	require.True(t, proto.Equal(msg, &back))
}
