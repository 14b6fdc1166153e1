package esdbnode

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/protobuf/proto"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

// mustMarshal encodes m for a fuzz seed.
func mustMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func readReqSeeds(tb testing.TB) [][]byte {
	// ReadStream(Forwards, Start, 5) as the official client sends it (protocol appendix A).
	wire, err := hex.DecodeString("0a124a020a000a080a041a0273311a0028054200")
	if err != nil {
		tb.Fatal(err)
	}
	sub := &streams.ReadReq{Options: &streams.ReadReq_Options{
		StreamOption: &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{
			AllOption: &streams.ReadReq_Options_AllOptions_End{End: &shared.Empty{}},
		}},
		CountOption: &streams.ReadReq_Options_Subscription{Subscription: &streams.ReadReq_Options_SubscriptionOptions{}},
		FilterOption: &streams.ReadReq_Options_Filter{Filter: &streams.ReadReq_Options_FilterOptions{
			Filter: &streams.ReadReq_Options_FilterOptions_EventType{EventType: &streams.ReadReq_Options_FilterOptions_Expression{Regex: `^[^\$].*`}},
			Window: &streams.ReadReq_Options_FilterOptions_Max{Max: 32}, CheckpointIntervalMultiplier: 1,
		}},
		UuidOption: &streams.ReadReq_Options_UUIDOption{Content: &streams.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}},
	}}
	return [][]byte{wire, mustMarshal(tb, sub), nil, {0x0a, 0x00}}
}

// FuzzReadRequest feeds arbitrary bytes, decoded as a ReadReq, through the
// read validation: it must never panic, must accept or reject with
// ErrInvalidRequest, and what it accepts must be self-consistent.
func FuzzReadRequest(f *testing.F) {
	for _, s := range readReqSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req streams.ReadReq
		if err := proto.Unmarshal(b, &req); err != nil {
			return
		}
		p, err := parseReadRequest(&req)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			return
		}
		if !p.all && p.stream == "" {
			t.Fatal("accepted a stream read without a stream name")
		}
		if p.subscription && p.backwards {
			t.Fatal("accepted a backwards subscription")
		}
		if p.filter != nil {
			if !p.all {
				t.Fatal("accepted a filter on a stream read")
			}
			if p.filter.interval == 0 {
				t.Fatal("accepted a zero checkpoint interval")
			}
			rec := eventlog.Record{Stream: "s", Type: "t"}
			_ = p.filter.match(&rec)
		}
	})
}

// FuzzAppendRequest feeds arbitrary bytes, decoded as AppendReqs, through the
// append translation (as options and as a proposed event): no panic, errors
// are the request sentinels, and accepted events round-trip their id.
func FuzzAppendRequest(f *testing.F) {
	opts := &streams.AppendReq{Content: &streams.AppendReq_Options_{Options: &streams.AppendReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte("s1")},
		ExpectedStreamRevision: &streams.AppendReq_Options_Revision{Revision: 3},
	}}}
	ev := &streams.AppendReq{Content: &streams.AppendReq_ProposedMessage_{ProposedMessage: &streams.AppendReq_ProposedMessage{
		Id:       &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: -5, LeastSignificantBits: 7}}},
		Metadata: map[string]string{"type": "T", "content-type": "application/json"},
		Data:     []byte("{}"),
	}}}
	strID := &streams.AppendReq{Content: &streams.AppendReq_ProposedMessage_{ProposedMessage: &streams.AppendReq_ProposedMessage{
		Id:       &shared.UUID{Value: &shared.UUID_String_{String_: "38fffbc2-339e-11ea-8c7b-784f43837872"}},
		Metadata: map[string]string{"type": "T", "content-type": "application/octet-stream"},
	}}}
	for _, m := range []proto.Message{opts, ev, strID} {
		f.Add(mustMarshal(f, m))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var req streams.AppendReq
		if err := proto.Unmarshal(b, &req); err != nil {
			return
		}
		if tgt, err := appendOptions(&req); err == nil {
			if tgt.stream == "" {
				t.Fatal("accepted an empty stream name")
			}
		} else if !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("options error %v is not ErrInvalidRequest", err)
		}
		p, err := proposedEvent(&req)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) && !errors.Is(err, ErrMissingMetadata) {
				t.Fatalf("event error %v is not a request sentinel", err)
			}
			return
		}
		if p.Type == "" {
			t.Fatal("accepted an empty event type")
		}
		back, err := parseUUID(uuidProto(p.ID, false))
		if err != nil || back != p.ID {
			t.Fatalf("structured id round trip: %v %v != %v", err, back, p.ID)
		}
		back, err = parseUUID(uuidProto(p.ID, true))
		if err != nil || back != p.ID {
			t.Fatalf("string id round trip: %v %v != %v", err, back, p.ID)
		}
	})
}
