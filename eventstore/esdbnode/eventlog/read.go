package eventlog

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
)

// maxPrealloc caps the capacity reserved up front for a read's result.
const maxPrealloc = 1024

// readHead reads stream's 'h' key, waiting for it to be durable if it is
// newer than the published head.
func (l *Log) readHead(ctx context.Context, stream string) (head, error) {
	v, closer, err := l.db.Get(appendHeadKey(nil, stream))
	if errors.Is(err, pebble.ErrNotFound) {
		return head{last: -1}, nil
	}
	if err != nil {
		return head{}, fmt.Errorf("eventlog: %w", err)
	}
	h, err := decodeHeadValue(v)
	closer.Close()
	if err != nil {
		return head{}, err
	}
	return h, l.awaitDurable(ctx, h.pos)
}

// getU64 reads an 8-byte index value.
func (l *Log) getU64(key []byte) (uint64, bool, error) {
	v, closer, err := l.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("eventlog: %w", err)
	}
	defer closer.Close()
	n, err := decodeU64(v)
	return n, err == nil, err
}

// recordAtPos reads the record at pos.
func (l *Log) recordAtPos(pos uint64) (Record, error) {
	v, closer, err := l.db.Get(appendLogKey(nil, pos))
	if err != nil {
		return Record{}, fmt.Errorf("eventlog: record at %d: %w", pos, err)
	}
	defer closer.Close()
	var rec Record
	return rec, decodeRecord(pos, v, &rec)
}

// readView is a stream as a read sees it.
type readView struct {
	head
	meta StreamMetadata
	vis  visibility
	// softDeleted: $tb says deleted (reads: not found).
	softDeleted bool
}

// view loads stream's head and effective metadata.
func (l *Log) view(ctx context.Context, stream string) (readView, error) {
	if err := validStream(stream); err != nil {
		return readView{}, err
	}
	h, err := l.readHead(ctx, stream)
	if err != nil {
		return readView{}, err
	}
	v := readView{head: h}
	if orig, isMeta := originalOf(stream); isMeta {
		oh, err := l.readHead(ctx, orig)
		if err != nil {
			return readView{}, err
		}
		v.tomb = oh.tomb
		one := int64(1)
		v.meta = StreamMetadata{MaxCount: &one}
	} else {
		v.meta, err = l.metadataOf(ctx, stream)
		if err != nil {
			return readView{}, err
		}
		v.softDeleted = v.meta.softDeleted()
	}
	v.vis = visibilityOf(v.meta, v.last, l.now())
	return v, nil
}

// metadataOf returns the effective metadata of the (non-meta) stream.
func (l *Log) metadataOf(ctx context.Context, stream string) (StreamMetadata, error) {
	ms := metastreamOf(stream)
	mh, err := l.readHead(ctx, ms)
	if err != nil || mh.last < 0 {
		return StreamMetadata{}, err
	}
	pos, ok, err := l.getU64(appendRevKey(nil, ms, uint64(mh.last)))
	if err != nil {
		return StreamMetadata{}, err
	}
	if !ok {
		return StreamMetadata{}, fmt.Errorf("%w: %s@%d missing", ErrCorrupt, ms, mh.last)
	}
	rec, err := l.recordAtPos(pos)
	if err != nil {
		return StreamMetadata{}, err
	}
	return parseMetadata(rec.IsJSON, rec.Data), nil
}

// Stream reports a stream's state (absent: LastRevision -1).
func (l *Log) Stream(ctx context.Context, stream string) (StreamState, error) {
	if err := l.enter(); err != nil {
		return StreamState{}, err
	}
	defer l.leave()
	v, err := l.view(ctx, stream)
	if err != nil {
		return StreamState{}, err
	}
	return StreamState{LastRevision: v.last, Tombstoned: v.tomb, SoftDeleted: v.softDeleted, Metadata: v.meta}, nil
}

// ReadStream returns up to limit visible events of stream. Forwards:
// revision >= from, ascending. Backwards: revision <= from (from past the
// end means the last), descending. ErrStreamNotFound for absent or
// soft-deleted streams, *StreamDeletedError for tombstoned ones (and for
// $$X of a tombstoned X).
func (l *Log) ReadStream(ctx context.Context, stream string, dir Direction, from uint64, limit int) ([]Record, error) {
	if err := l.enter(); err != nil {
		return nil, err
	}
	defer l.leave()
	v, err := l.view(ctx, stream)
	if err != nil {
		return nil, err
	}
	switch {
	case v.tomb:
		return nil, &StreamDeletedError{Stream: stream}
	case v.last < 0 || v.softDeleted:
		return nil, ErrStreamNotFound
	case limit <= 0:
		return nil, nil
	}
	lo := uint64(max(v.vis.minRev, 0))
	hi := uint64(v.last) // inclusive
	if dir == Forwards {
		lo = max(lo, from)
	} else {
		hi = min(hi, from)
	}
	if lo > hi {
		return nil, nil
	}
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: appendRevKey(nil, stream, lo),
		UpperBound: upperRevKey(stream, hi),
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	defer it.Close()
	out := make([]Record, 0, min(limit, maxPrealloc, int(hi-lo+1)))
	head := l.head.Load()
	var valid bool
	if dir == Forwards {
		valid = it.First()
	} else {
		valid = it.Last()
	}
	for n := 0; valid && len(out) < limit; n++ {
		if n&255 == 255 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		pos, err := decodeU64(it.Value())
		if err != nil {
			return nil, err
		}
		if pos <= head { // records above the published head are not durable yet
			rec, err := l.recordAtPos(pos)
			if err != nil {
				return nil, err
			}
			if v.vis.visible(rec.Revision, rec.Created) {
				out = append(out, rec)
			}
		}
		valid = step(it, dir)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	return out, nil
}

// upperRevKey is the exclusive upper bound of stream's revisions <= hi.
func upperRevKey(stream string, hi uint64) []byte {
	if hi == math.MaxUint64 {
		k := appendStreamPrefix(nil, prefixStream, stream)
		return append(k, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0)
	}
	return appendRevKey(nil, stream, hi+1)
}

// ReadEvent returns one visible event (for link resolution); ok false if it
// is missing, hidden by metadata, or the stream is deleted.
func (l *Log) ReadEvent(ctx context.Context, stream string, revision uint64) (Record, bool, error) {
	if err := l.enter(); err != nil {
		return Record{}, false, err
	}
	defer l.leave()
	v, err := l.view(ctx, stream)
	if err != nil {
		return Record{}, false, err
	}
	if v.tomb || v.softDeleted || v.last < 0 || revision > uint64(v.last) {
		return Record{}, false, nil
	}
	pos, ok, err := l.getU64(appendRevKey(nil, stream, revision))
	if err != nil || !ok || pos > l.head.Load() {
		return Record{}, false, err
	}
	rec, err := l.recordAtPos(pos)
	if err != nil {
		return Record{}, false, err
	}
	if !v.vis.visible(rec.Revision, rec.Created) {
		return Record{}, false, nil
	}
	return rec, true, nil
}

// ReadAll returns up to limit records of the whole log, ignoring stream
// metadata and deletion. Forwards: position >= from, ascending. Backwards:
// position < from, descending (from = math.MaxUint64: from the end).
func (l *Log) ReadAll(ctx context.Context, dir Direction, from uint64, limit int) ([]Record, error) {
	if err := l.enter(); err != nil {
		return nil, err
	}
	defer l.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	head := l.head.Load()
	var lo, hi uint64 // inclusive
	if dir == Forwards {
		lo, hi = max(from, 1), head
	} else {
		if from == 0 {
			return nil, nil
		}
		lo, hi = 1, min(from-1, head)
	}
	if limit <= 0 || lo > hi {
		return nil, nil
	}
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: appendLogKey(nil, lo),
		UpperBound: appendLogKey(nil, hi+1), // hi <= head < MaxUint64
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	defer it.Close()
	out := make([]Record, 0, min(uint64(limit), maxPrealloc, hi-lo+1))
	var arena valueArena
	var valid bool
	if dir == Forwards {
		valid = it.First()
	} else {
		valid = it.Last()
	}
	for ; valid && len(out) < limit; valid = step(it, dir) {
		if len(out)&255 == 255 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		k := it.Key()
		if len(k) != 9 {
			return nil, fmt.Errorf("%w: bad log key %x", ErrCorrupt, k)
		}
		pos, _ := decodeU64(k[1:])
		out = append(out, Record{})
		if err := decodeRecordInto(pos, it.Value(), &out[len(out)-1], &arena); err != nil {
			return nil, err
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	return out, nil
}

// step moves it one key in dir.
func step(it *pebble.Iterator, dir Direction) bool {
	if dir == Forwards {
		return it.Next()
	}
	return it.Prev()
}

// Streams lists stream names (for the UI): up to limit names after `after`
// in byte order.
func (l *Log) Streams(ctx context.Context, after string, limit int) ([]string, error) {
	if err := l.enter(); err != nil {
		return nil, err
	}
	defer l.leave()
	if limit <= 0 {
		return nil, ctx.Err()
	}
	lower := appendHeadKey(nil, after)
	lower = append(lower, 0) // strictly after
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: lower,
		UpperBound: []byte{prefixHead + 1},
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	defer it.Close()
	var out []string
	for valid := it.First(); valid && len(out) < limit; valid = it.Next() {
		h, err := decodeHeadValue(it.Value())
		if err != nil {
			return nil, err
		}
		if err := l.awaitDurable(ctx, h.pos); err != nil {
			return nil, err
		}
		out = append(out, string(it.Key()[1:]))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	return out, ctx.Err()
}
