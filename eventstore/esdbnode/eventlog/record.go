package eventlog

import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	"github.com/google/uuid"
)

const (
	recordVersion  = 1
	flagJSON       = 1 << 0
	headFlagTomb   = 1 << 0
	headValueLen   = 25
	prefixLegacy   = 'l' // record bodies of the old layout (before chunk files)
	prefixStream   = 's'
	prefixID       = 'i'
	prefixHead     = 'h'
	prefixCkpt     = 'p'
	maxUvarintSize = binary.MaxVarintLen64
)

// metaKey holds the index's progress: the last indexed position and the
// location just past its frame.
var metaKey = []byte("x-indexed")

// formatKey holds the version of the index's keys (indexFormat). An index
// without it, or with another version, is dropped and rebuilt on Open.
var formatKey = []byte("x-format")

// indexFormat 2: 's' and 'i' keys carry the stream's number instead of its
// name (format 1).
const indexFormat = 2

// appendRevKey appends the 's' key of (stream number, rev) to dst.
func appendRevKey(dst []byte, num, rev uint64) []byte {
	dst = append(dst, prefixStream)
	dst = binary.BigEndian.AppendUint64(dst, num)
	return binary.BigEndian.AppendUint64(dst, rev)
}

// appendIDKey appends the 'i' key of (stream number, id) to dst.
func appendIDKey(dst []byte, num uint64, id uuid.UUID) []byte {
	dst = append(dst, prefixID)
	dst = binary.BigEndian.AppendUint64(dst, num)
	return append(dst, id[:]...)
}

// appendHeadKey appends the 'h' key of stream to dst.
func appendHeadKey(dst []byte, stream string) []byte {
	dst = append(dst, prefixHead)
	return append(dst, stream...)
}

// head is a decoded 'h' value.
type head struct {
	last int64  // last revision, -1 if none
	tomb bool   // tombstoned
	pos  uint64 // position of the newest record that changed this head
	// num is the stream's number in the 's' and 'i' keys: the position of
	// its first record (0: it has none yet). Positions are unique, so are
	// numbers, and a new stream's keys sort after every older stream's.
	num uint64
}

func appendHeadValue(dst []byte, h head) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.last+1))
	var f byte
	if h.tomb {
		f |= headFlagTomb
	}
	dst = append(dst, f)
	dst = binary.BigEndian.AppendUint64(dst, h.pos)
	return binary.BigEndian.AppendUint64(dst, h.num)
}

func decodeHeadValue(b []byte) (head, error) {
	if len(b) != headValueLen || b[8]&^headFlagTomb != 0 {
		return head{}, fmt.Errorf("%w: bad head value (%d bytes)", ErrCorrupt, len(b))
	}
	n := binary.BigEndian.Uint64(b)
	if n > uint64(TombstoneRevision) {
		return head{}, fmt.Errorf("%w: head revision out of range", ErrCorrupt)
	}
	return head{last: int64(n) - 1, tomb: b[8]&headFlagTomb != 0, pos: binary.BigEndian.Uint64(b[9:]), num: binary.BigEndian.Uint64(b[17:])}, nil
}

func decodeU64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: bad index value (%d bytes)", ErrCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// encodeRecord appends the value encoding of r (everything but Position) to
// dst.
func encodeRecord(dst []byte, r *Record) []byte {
	var f byte
	if r.IsJSON {
		f |= flagJSON
	}
	dst = append(dst, recordVersion, f)
	dst = binary.AppendUvarint(dst, r.Revision)
	dst = append(dst, r.ID[:]...)
	dst = binary.AppendVarint(dst, r.Created.UnixNano())
	dst = binary.AppendUvarint(dst, uint64(len(r.Stream)))
	dst = append(dst, r.Stream...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Type)))
	dst = append(dst, r.Type...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Data)))
	dst = append(dst, r.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Metadata)))
	return append(dst, r.Metadata...)
}

// recordDecoder walks an encoded record with strict bounds checks.
type recordDecoder struct {
	b   []byte
	err error
}

func (d *recordDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, what)
	}
}

func (d *recordDecoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) bytes(n uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) lenBytes(what string) []byte {
	return d.bytes(d.uvarint(what), what)
}

// decodeRecord decodes the value b of the record at pos into r. The result
// does not alias b: one copy of b backs all of r's strings and slices (the
// slices are capped, so appending to one never overwrites another).
func decodeRecord(pos uint64, b []byte, r *Record) error {
	buf := make([]byte, len(b))
	copy(buf, b)
	return decodeRecordOwned(pos, buf, r)
}

// decodeRecordInto is decodeRecord with the copy of b taken from a: the
// records of one read share a few allocations instead of one each.
func decodeRecordInto(pos uint64, b []byte, r *Record, a *valueArena) error {
	return decodeRecordOwned(pos, a.copy(b), r)
}

// arenaChunk is the size of a valueArena's allocations; larger values get
// one of their own.
const arenaChunk = 32 << 10

// valueArena hands out copies of record values carved from shared chunks.
// A chunk is only ever appended to, so a copy, once handed out, is never
// written again (decodeRecordOwned's strings may alias it); each copy is
// capped, so appending to one never writes into the next. A record a caller
// keeps keeps its whole chunk (at most arenaChunk bytes) alive.
type valueArena struct{ buf []byte }

func (a *valueArena) copy(b []byte) []byte {
	if len(b) > cap(a.buf)-len(a.buf) {
		if len(b) > arenaChunk/4 {
			c := make([]byte, len(b))
			copy(c, b)
			return c
		}
		// Small reads take small chunks; long ones grow to arenaChunk.
		a.buf = make([]byte, 0, min(max(2*cap(a.buf), 4*len(b), 1024), arenaChunk))
	}
	n := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[n:len(a.buf):len(a.buf)]
}

// decodeRecordOwned is decodeRecord for a buffer the caller gives away.
func decodeRecordOwned(pos uint64, buf []byte, r *Record) error {
	if len(buf) < 2 {
		return fmt.Errorf("%w: short record (%d bytes)", ErrCorrupt, len(buf))
	}
	if buf[0] != recordVersion {
		return fmt.Errorf("%w: unknown record version %d", ErrCorrupt, buf[0])
	}
	if buf[1]&^flagJSON != 0 {
		return fmt.Errorf("%w: unknown record flags %#x", ErrCorrupt, buf[1])
	}
	d := recordDecoder{b: buf[2:]}
	rev := d.uvarint("revision")
	id := d.bytes(16, "id")
	created := d.varint("created")
	stream := d.lenBytes("stream")
	typ := d.lenBytes("type")
	data := d.lenBytes("data")
	meta := d.lenBytes("metadata")
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	*r = Record{
		Position: pos,
		Stream:   bytesToString(stream),
		Revision: rev,
		ID:       uuid.UUID(id),
		Type:     bytesToString(typ),
		IsJSON:   buf[1]&flagJSON != 0,
		Created:  time.Unix(0, created).UTC(),
	}
	if len(data) > 0 {
		r.Data = data
	}
	if len(meta) > 0 {
		r.Metadata = meta
	}
	return nil
}

// decodeRecordID returns the id of an encoded record without decoding the
// rest.
func decodeRecordID(b []byte) (uuid.UUID, error) {
	if len(b) < 2 || b[0] != recordVersion {
		return uuid.UUID{}, fmt.Errorf("%w: bad record header", ErrCorrupt)
	}
	d := recordDecoder{b: b[2:]}
	d.uvarint("revision")
	id := d.bytes(16, "id")
	if d.err != nil {
		return uuid.UUID{}, d.err
	}
	return uuid.UUID(id), nil
}

// bytesToString returns a string sharing b's memory; b must never be
// modified afterwards (decodeRecordOwned's buffer is never exposed
// writably at those offsets: Data and Metadata are capped sub-slices of
// other byte ranges).
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
