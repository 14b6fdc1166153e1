package eventlog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

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

// chunkAt returns chunk n.
func (l *Log) chunkAt(n uint32) (*chunk, error) {
	cs := *l.chunks.Load()
	if int(n) >= len(cs) {
		return nil, fmt.Errorf("%w: chunk %d does not exist", ErrCorrupt, n)
	}
	return cs[n], nil
}

// firstRead is how much readRecord reads before it knows a frame's size.
const firstRead = 512

// readFrame reads and checks the frame of e and returns its payload; buf
// is scratch space, returned for reuse.
func (l *Log) readFrame(buf []byte, e entry) ([]byte, []byte, error) {
	c, err := l.chunkAt(e.loc.chunk())
	if err != nil {
		return buf, nil, err
	}
	off := e.loc.off()
	n := min(int64(firstRead), c.size-off)
	if n < frameOverhead {
		return buf, nil, fmt.Errorf("%w: %s: frame at %d past the end", ErrCorrupt, chunkName(c.number), off)
	}
	buf = append(buf[:0], make([]byte, n)...)
	if err := c.readAt(buf, off); err != nil {
		return buf, nil, err
	}
	f, ok := parseFrameHeader(buf, c.size-off)
	if ok && f.size() > int64(len(buf)) {
		have := len(buf)
		buf = append(buf, make([]byte, f.size()-int64(have))...)
		if err := c.readAt(buf[have:], off+int64(have)); err != nil {
			return buf, nil, err
		}
	}
	p, err := framePayload(c, e, buf, f, ok)
	return buf, p, err
}

// framePayload checks e's frame, whose bytes start b and whose header parsed
// as f (ok false: it did not parse), and returns its payload.
func framePayload(c *chunk, e entry, b []byte, f frame, ok bool) ([]byte, error) {
	if !ok || !checkFrame(b, f) || f.pos != e.pos {
		return nil, fmt.Errorf("%w: %s: bad frame at offset %d (position %d)", ErrCorrupt, chunkName(c.number), e.loc.off(), e.pos)
	}
	return b[frameHeaderSize : frameHeaderSize+f.n], nil
}

// readRecord reads the record of e into rec (rec does not alias buf).
func (l *Log) readRecord(buf []byte, e entry, rec *Record) ([]byte, error) {
	buf, payload, err := l.readFrame(buf, e)
	if err != nil {
		return buf, err
	}
	return buf, decodeRecord(e.pos, payload, rec)
}

// readBlock is how much a blockReader reads at once.
const readBlock = 64 << 10

// blockReader reads the frames of a stream read: a frame found in the block it
// read last costs no read, and a miss reads a block of readBlock bytes around
// the frame, ahead of it in the direction of the read, so that a run of
// neighbouring frames (a stream's events appended together) costs one
// positioned read. Bytes past the durable end may be in the block; only frames
// the caller knows durable are parsed from it.
type blockReader struct {
	dir   Direction
	chunk *chunk
	off   int64 // chunk offset of data[0]
	data  []byte
}

// blocks recycles blockReader buffers: records never alias them (they are
// copied into the read's arena), so a buffer is free once its read returns.
var blocks = sync.Pool{New: func() any { b := make([]byte, 0, readBlock); return &b }}

// release returns br's buffer to blocks.
func (br *blockReader) release() {
	if cap(br.data) == readBlock {
		b := br.data[:0]
		blocks.Put(&b)
	}
	br.data = nil
}

// payload returns the checked payload of e's frame, valid until the next call.
func (br *blockReader) payload(l *Log, e entry) ([]byte, error) {
	if p, ok, err := br.cached(e); ok || err != nil {
		return p, err
	}
	c, err := l.chunkAt(e.loc.chunk())
	if err != nil {
		return nil, err
	}
	off := e.loc.off()
	start := off
	if br.dir == Backwards {
		start = max(chunkHeaderSize, off+firstRead-readBlock)
	}
	end := min(c.size, start+readBlock)
	if end-off < frameOverhead {
		return nil, fmt.Errorf("%w: %s: frame at %d past the end", ErrCorrupt, chunkName(c.number), off)
	}
	if n := int(end - start); cap(br.data) >= n {
		br.data = br.data[:n] // readAt overwrites all of it
	} else {
		br.data = make([]byte, n)
	}
	if err := c.readAt(br.data, start); err != nil {
		br.chunk = nil
		return nil, err
	}
	br.chunk, br.off = c, start
	if p, ok, err := br.cached(e); ok || err != nil {
		return p, err
	}
	// Larger than the block, or not a frame: read it alone (which reports the
	// corruption, if any).
	_, p, err := l.readFrame(nil, e)
	return p, err
}

// cached returns e's payload if its whole frame is in the block.
func (br *blockReader) cached(e entry) ([]byte, bool, error) {
	c := br.chunk
	if c == nil || c.number != e.loc.chunk() {
		return nil, false, nil
	}
	rel := e.loc.off() - br.off
	if rel < 0 || rel+frameHeaderSize > int64(len(br.data)) {
		return nil, false, nil
	}
	f, ok := parseFrameHeader(br.data[rel:], c.size-e.loc.off())
	if !ok || rel+f.size() > int64(len(br.data)) {
		return nil, false, nil
	}
	p, err := framePayload(c, e, br.data[rel:rel+f.size()], f, true)
	return p, err == nil, err
}

// readRecordInto reads e's record through br, with the record's memory from a.
func (l *Log) readRecordInto(br *blockReader, e entry, rec *Record, a *valueArena) error {
	payload, err := br.payload(l, e)
	if err != nil {
		return err
	}
	return decodeRecordInto(e.pos, payload, rec, a)
}

// recordAt reads the record of an index entry.
func (l *Log) recordAt(e entry) (Record, error) {
	var rec Record
	_, err := l.readRecord(nil, e, &rec)
	return rec, err
}

// getEntry reads an 's' value.
func (l *Log) getEntry(key []byte) (entry, bool, error) {
	v, closer, err := l.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return entry{}, false, nil
	}
	if err != nil {
		return entry{}, false, fmt.Errorf("eventlog: %w", err)
	}
	defer closer.Close()
	e, err := decodeEntry(v)
	return e, err == nil, err
}

// addCkpt records the location of a checkpoint position (the writer, in
// position order).
func (l *Log) addCkpt(pos uint64, at loc) {
	old := *l.ckpts.Load()
	if uint64(len(old))*ckptEvery+1 != pos {
		return // already known (cannot happen: positions are written once)
	}
	next := append(old, at)
	l.ckpts.Store(&next)
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
	e, ok, err := l.getEntry(appendRevKey(nil, mh.num, uint64(mh.last)))
	if err != nil {
		return StreamMetadata{}, err
	}
	if !ok {
		return StreamMetadata{}, fmt.Errorf("%w: %s@%d missing", ErrCorrupt, ms, mh.last)
	}
	rec, err := l.recordAt(e)
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
		LowerBound: appendRevKey(nil, v.num, lo),
		UpperBound: upperRevKey(v.num, hi),
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	defer it.Close()
	out := make([]Record, 0, min(limit, maxPrealloc, int(hi-lo+1)))
	head := l.head.Load()
	var (
		valid bool
		br    = blockReader{dir: dir, data: *blocks.Get().(*[]byte)}
		arena valueArena
	)
	defer br.release()
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
		e, err := decodeEntry(it.Value())
		if err != nil {
			return nil, err
		}
		if e.pos <= head { // records above the published head are not durable yet
			var rec Record
			if err := l.readRecordInto(&br, e, &rec, &arena); err != nil {
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

// upperRevKey is the exclusive upper bound of stream num's revisions <= hi.
func upperRevKey(num, hi uint64) []byte {
	if hi == math.MaxUint64 {
		return append(appendRevKey(nil, num, hi), 0)
	}
	return appendRevKey(nil, num, hi+1)
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
	e, ok, err := l.getEntry(appendRevKey(nil, v.num, revision))
	if err != nil || !ok || e.pos > l.head.Load() {
		return Record{}, false, err
	}
	rec, err := l.recordAt(e)
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
	if dir == Backwards {
		lo = max(lo, hi-min(hi-lo, uint64(limit-1)))
	} else {
		hi = min(hi, lo+uint64(limit-1))
	}
	out := make([]Record, 0, min(maxPrealloc, hi-lo+1))
	sc, err := l.scanFrom(lo)
	if err != nil {
		return nil, err
	}
	var arena valueArena
	for pos := lo; pos <= hi; pos++ {
		if len(out)&255 == 255 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		out = append(out, Record{})
		if err := sc.next(pos, &out[len(out)-1], &arena); err != nil {
			return nil, err
		}
	}
	if dir == Backwards {
		slices.Reverse(out)
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

// logReader reads consecutive frames from a checkpoint on, through a
// window that grows while the read goes on.
type logReader struct {
	l      *Log
	c      *chunk
	at     int64  // offset of the next frame in c
	pos    uint64 // its position
	win    []byte
	winOff int64 // offset of win[0] in c
}

const (
	minReadWindow = 4 << 10
	maxReadWindow = 256 << 10
)

// scanFrom returns a reader positioned at pos (<= the head).
func (l *Log) scanFrom(pos uint64) (*logReader, error) {
	ck := *l.ckpts.Load()
	i := (pos - 1) / ckptEvery
	if i >= uint64(len(ck)) {
		return nil, fmt.Errorf("%w: no checkpoint for position %d", ErrCorrupt, pos)
	}
	c, err := l.chunkAt(ck[i].chunk())
	if err != nil {
		return nil, err
	}
	r := &logReader{l: l, c: c, at: ck[i].off(), pos: i*ckptEvery + 1}
	for r.pos < pos {
		if _, _, err := r.frameAt(false); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// next decodes the frame at pos into rec.
func (r *logReader) next(pos uint64, rec *Record, a *valueArena) error {
	if pos != r.pos {
		return fmt.Errorf("eventlog: reader at %d, asked for %d", r.pos, pos)
	}
	f, payload, err := r.frameAt(true)
	if err != nil {
		return err
	}
	return decodeRecordInto(f.pos, payload, rec, a)
}

// window makes win hold [at, at+n) of the current chunk (less at its end).
func (r *logReader) window(n int64) error {
	if r.at >= r.winOff && r.at+n <= r.winOff+int64(len(r.win)) {
		return nil
	}
	size := min(max(n, int64(cap(r.win))*2, minReadWindow), max(n, maxReadWindow), r.c.size-r.at)
	r.win = append(r.win[:0], make([]byte, size)...)
	r.winOff = r.at
	return r.c.readAt(r.win, r.at)
}

// frameAt returns the next frame and its payload (valid until the next
// call) and moves past it. Frames that are only skipped (check false) are
// not checksummed, so that damage stays local to the records it hit.
func (r *logReader) frameAt(check bool) (frame, []byte, error) {
	for {
		if r.at+frameOverhead <= r.c.size {
			if err := r.window(frameHeaderSize); err != nil {
				return frame{}, nil, err
			}
			if r.win[r.at-r.winOff] != 0 {
				break
			}
		}
		// The writer moved to the next chunk here.
		c, err := r.l.chunkAt(r.c.number + 1)
		if err != nil {
			return frame{}, nil, fmt.Errorf("%w: position %d missing after %s", ErrCorrupt, r.pos, chunkName(r.c.number))
		}
		r.c, r.at, r.win = c, chunkHeaderSize, r.win[:0]
	}
	b := r.win[r.at-r.winOff:]
	f, ok := parseFrameHeader(b, r.c.size-r.at)
	if ok && check {
		if err := r.window(f.size()); err != nil {
			return frame{}, nil, err
		}
		b = r.win[r.at-r.winOff:]
	}
	if !ok || (check && !checkFrame(b, f)) || f.pos != r.pos {
		return frame{}, nil, fmt.Errorf("%w: %s: bad frame at offset %d (position %d)", ErrCorrupt, chunkName(r.c.number), r.at, r.pos)
	}
	r.at += f.size()
	r.pos++
	if !check {
		return f, nil, nil
	}
	return f, b[frameHeaderSize : frameHeaderSize+f.n], nil
}
