// Package wire encodes the node's event messages by hand, in the protobuf wire format, for
// the Streams reads and subscriptions and for persistent-subscription delivery alike, and
// holds the gRPC codec that sends them as they are.
//
// # Contract
//
// Building a *streams.ReadResp or *persistent.ReadResp per event and marshalling it by
// reflection costs more than reading the event, so event messages are encoded here, with the
// field numbers of the client's protos (v4.2.0):
//
//	streams.ReadResp     event = 1 (ReadEvent)
//	persistent.ReadResp  event = 1 (ReadEvent)
//	ReadEvent            event = 1, link = 2 (RecordedEvent), commit_position = 3 (oneof
//	                     position); persistent only: retry_count = 5 (oneof count)
//	RecordedEvent        id = 1 (UUID), stream_identifier = 2, stream_revision = 3,
//	                     prepare_position = 4, commit_position = 5,
//	                     metadata = 6 (map<string,string>), custom_metadata = 7, data = 8
//	UUID                 structured = 1 {most_significant_bits = 1,
//	                     least_significant_bits = 2} | string = 2 (oneof value)
//	StreamIdentifier     stream_name = 3
//
// The two RecordedEvent and ReadEvent messages share their field numbers. A Streams record
// carries its own position; a persistent one the original position (the link's if
// present) on both records, as a real node does. Like proto3
// marshalling, zero scalars and empty bytes outside a oneof are left out; oneof members and
// message fields that are set are always written. The bytes decode with proto.Unmarshal to
// the message the reflection path builds (the tests check both protos); only the order of the
// metadata map's entries is fixed here. Codec sends a *Msg as its bytes and every other
// message through gRPC's proto codec; a server sending Msgs must install it
// (grpc.ForceServerCodecV2(wire.NewCodec())).
package wire

import (
	"encoding/binary"
	"strconv"
	"sync"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

const (
	fieldRespEvent = 1

	fieldReadEventEvent          = 1
	fieldReadEventLink           = 2
	fieldReadEventCommitPosition = 3
	fieldReadEventRetryCount     = 5 // persistent.ReadResp.ReadEvent only

	fieldRecID              = 1
	fieldRecStream          = 2
	fieldRecRevision        = 3
	fieldRecPreparePosition = 4
	fieldRecCommitPosition  = 5
	fieldRecMetadata        = 6
	fieldRecCustomMetadata  = 7
	fieldRecData            = 8

	fieldUUIDStructured = 1
	fieldUUIDString     = 2
	fieldUUIDMost       = 1
	fieldUUIDLeast      = 2

	fieldStreamName = 3

	fieldMapKey   = 1
	fieldMapValue = 2
)

// Content types of the "content-type" metadata entry.
const (
	contentTypeJSON   = "application/json"
	contentTypeBinary = "application/octet-stream"
)

// Msg is a message already in the protobuf wire format; Codec sends its bytes as they are.
type Msg struct{ B []byte }

// Encoder encodes Streams event messages into a buffer it reuses: the result of one call
// is valid until the next. Not safe for concurrent use.
type Encoder struct {
	buf []byte
	msg Msg
}

// Event encodes streams.ReadResp{event: ReadEvent{event, link, commit_position: pos}}; ev
// or link may be nil (not set).
func (e *Encoder) Event(ev, link *eventlog.Record, pos uint64, stringIDs bool) *Msg {
	e.buf = appendReadResp(e.buf[:0], ev, link, pos, stringIDs, -1)
	e.msg.B = e.buf
	return &e.msg
}

// PersistentEvent encodes persistent.ReadResp{event: ReadEvent{event, link,
// commit_position: pos, retry_count: retry}} into a new buffer of its exact size (the
// message may wait in a consumer's queue).
func PersistentEvent(ev, link *eventlog.Record, pos uint64, retry int32, stringIDs bool) *Msg {
	return &Msg{B: appendReadResp(nil, ev, link, pos, stringIDs, retry)}
}

// recPos is the position written on a record: its own in Streams messages; in persistent
// ones the original position (the link's if present) on both records, as a real node does.
func recPos(rec *eventlog.Record, pos uint64, retry int32) uint64 {
	if retry >= 0 {
		return pos
	}
	return rec.Position
}

// appendReadResp appends a ReadResp with its ReadEvent; retry < 0 leaves retry_count out
// (Streams).
func appendReadResp(b []byte, ev, link *eventlog.Record, pos uint64, stringIDs bool, retry int32) []byte {
	var evm, linkm recordedEventWire
	size := 0
	if ev != nil {
		evm = newRecordedEventWire(ev, recPos(ev, pos, retry), stringIDs)
		size += protowire.SizeTag(fieldReadEventEvent) + protowire.SizeBytes(evm.size)
	}
	if link != nil {
		linkm = newRecordedEventWire(link, recPos(link, pos, retry), stringIDs)
		size += protowire.SizeTag(fieldReadEventLink) + protowire.SizeBytes(linkm.size)
	}
	size += protowire.SizeTag(fieldReadEventCommitPosition) + protowire.SizeVarint(pos)
	if retry >= 0 {
		size += protowire.SizeTag(fieldReadEventRetryCount) + protowire.SizeVarint(uint64(retry))
	}
	if b == nil {
		b = make([]byte, 0, protowire.SizeTag(fieldRespEvent)+protowire.SizeBytes(size))
	}
	b = protowire.AppendTag(b, fieldRespEvent, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	if ev != nil {
		b = protowire.AppendTag(b, fieldReadEventEvent, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(evm.size))
		b = evm.append(b)
	}
	if link != nil {
		b = protowire.AppendTag(b, fieldReadEventLink, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(linkm.size))
		b = linkm.append(b)
	}
	b = protowire.AppendTag(b, fieldReadEventCommitPosition, protowire.VarintType)
	b = protowire.AppendVarint(b, pos)
	if retry >= 0 {
		b = protowire.AppendTag(b, fieldReadEventRetryCount, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(retry))
	}
	return b
}

// recordedEventWire is a RecordedEvent about to be encoded, with the sizes
// its length prefixes need.
type recordedEventWire struct {
	rec       *eventlog.Record
	stringIDs bool
	pos       uint64 // prepare and commit position written
	ct        string
	created   [20]byte // decimal .NET ticks since the Unix epoch
	createdN  int
	idSize    int // size of the UUID message
	uuidSize  int // size of the UUID.Structured message (not stringIDs)
	size      int // size of the RecordedEvent message
}

const (
	metaKeyType        = "type"
	metaKeyContentType = "content-type"
	metaKeyCreated     = "created"
)

func newRecordedEventWire(rec *eventlog.Record, pos uint64, stringIDs bool) recordedEventWire {
	w := recordedEventWire{rec: rec, pos: pos, stringIDs: stringIDs, ct: contentTypeBinary}
	if rec.IsJSON {
		w.ct = contentTypeJSON
	}
	w.createdN = len(strconv.AppendInt(w.created[:0], rec.Created.UnixNano()/100, 10))

	if stringIDs {
		w.idSize = protowire.SizeTag(fieldUUIDString) + protowire.SizeBytes(36)
	} else {
		most, least := uuidHalves(rec)
		n := 0
		if most != 0 {
			n += protowire.SizeTag(fieldUUIDMost) + protowire.SizeVarint(most)
		}
		if least != 0 {
			n += protowire.SizeTag(fieldUUIDLeast) + protowire.SizeVarint(least)
		}
		w.uuidSize = n
		w.idSize = protowire.SizeTag(fieldUUIDStructured) + protowire.SizeBytes(n)
	}

	n := protowire.SizeTag(fieldRecID) + protowire.SizeBytes(w.idSize)
	n += protowire.SizeTag(fieldRecStream) + protowire.SizeBytes(streamIdentifierSize(rec.Stream))
	n += sizeUint(fieldRecRevision, rec.Revision)
	n += sizeUint(fieldRecPreparePosition, w.pos)
	n += sizeUint(fieldRecCommitPosition, w.pos)
	n += sizeMapEntry(metaKeyType, len(rec.Type))
	n += sizeMapEntry(metaKeyContentType, len(w.ct))
	n += sizeMapEntry(metaKeyCreated, w.createdN)
	n += sizeOptBytes(fieldRecCustomMetadata, len(rec.Metadata))
	n += sizeOptBytes(fieldRecData, len(rec.Data))
	w.size = n
	return w
}

// append appends the RecordedEvent message (without tag and length).
func (w *recordedEventWire) append(b []byte) []byte {
	rec := w.rec
	b = protowire.AppendTag(b, fieldRecID, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(w.idSize))
	if w.stringIDs {
		b = protowire.AppendTag(b, fieldUUIDString, protowire.BytesType)
		b = protowire.AppendVarint(b, 36)
		b = appendUUIDString(b, rec)
	} else {
		most, least := uuidHalves(rec)
		b = protowire.AppendTag(b, fieldUUIDStructured, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(w.uuidSize))
		b = appendUint(b, fieldUUIDMost, most)
		b = appendUint(b, fieldUUIDLeast, least)
	}
	b = protowire.AppendTag(b, fieldRecStream, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(streamIdentifierSize(rec.Stream)))
	if rec.Stream != "" {
		b = protowire.AppendTag(b, fieldStreamName, protowire.BytesType)
		b = protowire.AppendString(b, rec.Stream)
	}
	b = appendUint(b, fieldRecRevision, rec.Revision)
	b = appendUint(b, fieldRecPreparePosition, w.pos)
	b = appendUint(b, fieldRecCommitPosition, w.pos)
	b = appendMapEntry(b, metaKeyType, rec.Type)
	b = appendMapEntry(b, metaKeyContentType, w.ct)
	b = appendMapEntry(b, metaKeyCreated, w.created[:w.createdN])
	if len(rec.Metadata) > 0 {
		b = protowire.AppendTag(b, fieldRecCustomMetadata, protowire.BytesType)
		b = protowire.AppendBytes(b, rec.Metadata)
	}
	if len(rec.Data) > 0 {
		b = protowire.AppendTag(b, fieldRecData, protowire.BytesType)
		b = protowire.AppendBytes(b, rec.Data)
	}
	return b
}

// uuidHalves is the id as the two int64s of UUID.Structured, as the varints
// they are encoded as.
func uuidHalves(rec *eventlog.Record) (most, least uint64) {
	return binary.BigEndian.Uint64(rec.ID[:8]), binary.BigEndian.Uint64(rec.ID[8:])
}

// appendUUIDString appends the 36-character form of the id (uuid.String).
func appendUUIDString(b []byte, rec *eventlog.Record) []byte {
	var s [36]byte
	const hex = "0123456789abcdef"
	id := rec.ID
	j := 0
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hex[c>>4], hex[c&0x0f]
		j += 2
	}
	return append(b, s[:]...)
}

func streamIdentifierSize(stream string) int {
	if stream == "" {
		return 0
	}
	return protowire.SizeTag(fieldStreamName) + protowire.SizeBytes(len(stream))
}

func sizeUint(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func sizeOptBytes(num protowire.Number, n int) int {
	if n == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

// mapEntrySize is the size of a metadata map entry message (key and value
// are always written, as proto-go does).
func mapEntrySize(key string, valueLen int) int {
	return protowire.SizeTag(fieldMapKey) + protowire.SizeBytes(len(key)) +
		protowire.SizeTag(fieldMapValue) + protowire.SizeBytes(valueLen)
}

func sizeMapEntry(key string, valueLen int) int {
	return protowire.SizeTag(fieldRecMetadata) + protowire.SizeBytes(mapEntrySize(key, valueLen))
}

// appendMapEntry appends one metadata map entry; value is a string or the
// bytes of one.
func appendMapEntry[V string | []byte](b []byte, key string, value V) []byte {
	b = protowire.AppendTag(b, fieldRecMetadata, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(mapEntrySize(key, len(value))))
	b = protowire.AppendTag(b, fieldMapKey, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, fieldMapValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(value)))
	return append(b, value...)
}

// Codec is a server's gRPC codec (installed with grpc.ForceServerCodecV2, so it serves
// that server only): a *Msg goes
// out as its bytes, copied into a buffer of msgBufs (the transport may still
// hold the message after SendMsg returns and frees it once written, while the
// encoder reuses its own buffer at once); every other message goes through
// gRPC's standard proto codec.
type Codec struct {
	proto encoding.CodecV2
	bufs  *msgBufPool
}

var _ encoding.CodecV2 = Codec{}

// NewCodec delegates to the codec that package grpcproto registers when it is imported (as
// it is here), so the lookup cannot miss.
func NewCodec() Codec {
	return Codec{proto: encoding.GetCodecV2(grpcproto.Name), bufs: &msgBufPool{}}
}

func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*Msg); ok {
		buf := c.bufs.Get(len(r.B))
		copy(*buf, r.B)
		return mem.BufferSlice{mem.NewBuffer(buf, c.bufs)}, nil
	}
	return c.proto.Marshal(v)
}

func (c Codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (c Codec) Name() string { return c.proto.Name() }

// smallMsgCap is the capacity of msgBufPool's own buffers: above gRPC's
// pooling threshold (1 KiB), so that mem.NewBuffer returns them to the pool
// when the transport is done, and enough for a typical event message.
const smallMsgCap = 2 << 10

// msgBufPool is a mem.BufferPool for encoded event messages. gRPC's default
// pool does not pool messages of 1 KiB or less (mem.Copy allocates them),
// which is nearly every event; this one keeps buffers of smallMsgCap for
// those and uses the default pool for larger ones.
type msgBufPool struct{ small sync.Pool }

var _ mem.BufferPool = (*msgBufPool)(nil)

func (p *msgBufPool) Get(n int) *[]byte {
	if n > smallMsgCap {
		return mem.DefaultBufferPool().Get(n)
	}
	b, _ := p.small.Get().(*[]byte)
	if b == nil {
		s := make([]byte, smallMsgCap)
		b = &s
	}
	*b = (*b)[:n]
	return b
}

func (p *msgBufPool) Put(b *[]byte) {
	if cap(*b) != smallMsgCap {
		mem.DefaultBufferPool().Put(b)
		return
	}
	p.small.Put(b)
}
