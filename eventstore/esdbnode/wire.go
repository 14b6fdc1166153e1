package esdbnode

import (
	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
	"github.com/orderstore/orders/eventstore/esdbnode/wire"
)

// The hot path of reads and catch-up subscriptions sends one ReadResp per event, encoded by
// hand by package wire (shared with persistent-subscription delivery), and the server's
// codec sends those messages as their bytes.

// rawResp is an event message in the protobuf wire format.
type rawResp = wire.Msg

// respEncoder encodes event messages into a buffer it reuses: the result of one call is
// valid until the next. Not safe for concurrent use.
type respEncoder struct{ e wire.Encoder }

// event encodes ReadResp{event: ReadEvent{event, link, commit_position: pos}}; ev or link
// may be nil (not set).
func (e *respEncoder) event(ev, link *eventlog.Record, pos uint64, stringIDs bool) *rawResp {
	return e.e.Event(ev, link, pos, stringIDs)
}

// newRawCodec is the server's codec: a *rawResp goes out as its bytes, every other message
// through gRPC's proto codec.
func newRawCodec() wire.Codec { return wire.NewCodec() }
