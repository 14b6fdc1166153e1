package eventlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

type opKind uint8

const (
	opAppend opKind = iota
	opDelete
	opTombstone
)

// request is one Append, Delete or Tombstone on its way into the log.
type request struct {
	ctx    context.Context
	op     opKind
	stream string
	exp    Expected
	events []Proposed

	res  AppendResult // Delete/Tombstone: res.Position
	err  error
	done atomic.Bool // res and err are final
	// wake gets one value: false once the request is answered by another
	// goroutine's group commit, true if its goroutine is to lead next.
	wake chan bool
}

// finish answers r.
func (r *request) finish(res AppendResult, err error) {
	r.res, r.err = res, err
	r.done.Store(true)
	r.wake <- false
}

// submit queues req and waits for its answer, or writes it itself: the
// request that finds the log idle leads a group commit (its own request
// and whatever is queued), and arrivals during that commit queue for the
// next one. A lone writer thus writes, syncs and returns on its own
// goroutine. When the leader's own request is answered it hands the lead
// to the oldest queued request, whose goroutine takes the next group.
func (l *Log) submit(ctx context.Context, req *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req.wake = make(chan bool, 1)
	l.rw.RLock()
	if l.closed {
		l.rw.RUnlock()
		return ErrClosed
	}
	select {
	case l.reqs <- req:
	case <-ctx.Done():
		l.rw.RUnlock()
		return ctx.Err()
	}
	l.rw.RUnlock()
	promoted := false
	if !l.lead.TryLock() {
		// Someone leads. It answers us, or hands us the lead. Waiting for
		// ctx here could report a failure for a write that then commits.
		if lead := <-req.wake; !lead {
			return req.err
		}
		promoted = true
	}
	l.w.lead(req, promoted)
	return req.err
}

// wstate is the writer's view of one stream.
type wstate struct {
	head
	// meta is, for a metastream $$X, the metadata its last event stands for
	// (the effective metadata of X).
	meta StreamMetadata
}

// revKey and idKey name the index entries of the group being decided.
type revKey struct {
	stream string
	rev    uint64
}

type revVal struct {
	id  uuid.UUID
	pos uint64
}

type idKey struct {
	stream string
	id     uuid.UUID
}

// segment is a run of the group's frames in one chunk: w.buf[start:end]
// goes to c at off.
type segment struct {
	c          *chunk
	off        int64
	start, end int
}

// writer is the state of the log's write side. Only the holder of Log.lead
// touches it.
type writer struct {
	l      *Log
	next   uint64 // position of the next record
	cur    *chunk // chunk the next frame goes to
	off    int64  // offset of the next frame in cur
	cache  map[string]*wstate
	batch  *pebble.Batch // the group's index entries
	now    time.Time
	start  uint64 // first position of the group
	failed error  // sticky: a write or sync failed, the log takes no more writes

	pending []*request
	buf     []byte    // the group's frames
	frames  []int     // offset of each frame in buf
	segs    []segment // where buf goes
	pendRev map[revKey]revVal
	pendID  map[idKey]uint64
	ixBuf   []byte    // the group's index keys and values, back to back
	ix      []ixEntry // where each is in ixBuf, in the order set
	key     []byte
	val     []byte
	getKey  []byte
	meta1   [1]Proposed
	rbuf    []byte // frame reads

	prep *preparer
}

func newWriter(l *Log, tail logTail) *writer {
	cs := *l.chunks.Load()
	return &writer{
		l: l, next: tail.next, cur: cs[tail.end.chunk()], off: tail.end.off(),
		cache:   make(map[string]*wstate),
		pendRev: make(map[revKey]revVal),
		pendID:  make(map[idKey]uint64),
		prep:    newPreparer(l.fs, l.dir),
	}
}

// lead runs group commits until own is answered, then hands the lead on.
// promoted: own was taken off the queue by the previous leader.
func (w *writer) lead(own *request, promoted bool) {
	for first := true; !own.done.Load(); first = false {
		w.pending = w.pending[:0]
		if promoted && first {
			w.pending = append(w.pending, own)
		}
		select {
		case <-w.l.closing:
			// Close waits for the lead: refuse everything not yet taken.
			for _, r := range w.pending {
				r.finish(AppendResult{}, ErrClosed)
			}
			w.l.refuseQueued()
			w.pending = w.pending[:0]
			w.l.lead.Unlock()
			return
		default:
		}
	drain:
		for len(w.pending) < w.l.maxBatch {
			select {
			case r := <-w.l.reqs:
				w.pending = append(w.pending, r)
			default:
				break drain
			}
		}
		if len(w.pending) == 0 {
			break // cannot happen: own is queued or answered
		}
		w.commit()
	}
	w.handOff()
}

// handOff passes the lead to the oldest queued request, or releases it. A
// request queued just before the release finds the lead free and takes it
// itself, or is seen here on the second look.
func (w *writer) handOff() {
	for {
		select {
		case r := <-w.l.reqs:
			r.wake <- true
			return
		default:
		}
		w.l.lead.Unlock()
		if len(w.l.reqs) == 0 || !w.l.lead.TryLock() {
			return
		}
	}
}

// commit decides every pending request, writes the group's frames, syncs
// them, indexes them, publishes the head and answers the requests.
func (w *writer) commit() {
	if w.failed != nil {
		for _, r := range w.pending {
			r.finish(AppendResult{}, w.failed)
		}
		return
	}
	if len(w.cache) > maxCachedStreams {
		w.cache = make(map[string]*wstate)
	}
	w.batch = w.l.db.NewBatch()
	w.now = w.l.now().UTC()
	w.start = w.next
	w.buf, w.frames = w.buf[:0], w.frames[:0]
	w.segs = append(w.segs[:0], segment{c: w.cur, off: w.off})
	clear(w.pendRev)
	clear(w.pendID)
	w.ixBuf, w.ix = w.ixBuf[:0], w.ix[:0]
	for _, r := range w.pending {
		// A request cancelled before a leader took it is not written.
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		r.res, r.err = w.apply(r)
	}
	var err error
	if n := w.next - w.start; n >= uint64(w.l.overlapAt) {
		// A large group: commit the index while the sync is in flight.
		// Safe: an index ahead of the synced log can only cover the group
		// that ends in the last chunk, which Open verifies from the
		// group's start (see doc.go).
		if err = w.writeFrames(); err == nil {
			synced := make(chan error, 1)
			go func() { synced <- w.syncFrames() }()
			ierr := w.commitIndex()
			err = errors.Join(<-synced, ierr)
		}
	} else if n > 0 {
		err = w.writeFrames()
		if err == nil {
			err = w.syncFrames()
		}
		if err == nil {
			err = w.commitIndex()
		}
	}
	if err == nil && w.next != w.start {
		w.l.syncs.Add(1)
	}
	if cerr := w.batch.Close(); err == nil {
		err = cerr
	}
	w.batch = nil
	if err != nil {
		// The group may be on disk or not: take no more writes (Open
		// recovers what was synced).
		w.failed = fmt.Errorf("eventlog: commit: %w", err)
		w.l.fail(w.failed)
		for _, r := range w.pending {
			if r.err == nil {
				r.res, r.err = AppendResult{}, w.failed
			}
		}
	} else if w.next != w.start {
		w.l.publish(w.next - 1)
		if w.off > w.cur.size/2 {
			w.prep.start(w.cur.number+1, w.l.chunkSize)
		}
	}
	for i, r := range w.pending {
		r.finish(r.res, r.err)
		w.pending[i] = nil
	}
}

// overlapRecords: groups of at least this many records commit their index
// entries on the leader while a helper goroutine runs the fdatasync.
// Smaller groups do it in sequence, without a hand-off. (Log.overlapAt;
// tests lower it.)
const overlapRecords = 16

// writeFrames seals the group's frames and writes them.
func (w *writer) writeFrames() error {
	last := w.next - 1
	for i, at := range w.frames {
		sealFrame(w.buf[at:], uint32(last-(w.start+uint64(i))))
	}
	w.segs[len(w.segs)-1].end = len(w.buf)
	for _, s := range w.segs {
		if s.end > s.start {
			if err := s.c.writeData(w.buf[s.start:s.end], s.off); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncFrames syncs every chunk the group went to (one fdatasync unless the
// group crossed into a new chunk). It touches only the segments, so that it
// can run beside commitIndex.
func (w *writer) syncFrames() error {
	for i, s := range w.segs {
		if s.end > s.start || i == len(w.segs)-1 {
			if err := s.c.f.SyncData(); err != nil {
				return fmt.Errorf("sync %s: %w", chunkName(s.c.number), err)
			}
		}
	}
	return nil
}

// commitIndex adds the progress key to the group's index batch and commits
// it without sync.
func (w *writer) commitIndex() error {
	// In key order, so that a run of neighbouring keys (a stream's
	// revisions) is inserted into the memtable next to each other, each
	// from where the last one went, instead of each searched from the top.
	// Stable: of two entries of one key, the later stays later and wins.
	buf := w.ixBuf
	slices.SortStableFunc(w.ix, func(a, b ixEntry) int {
		return bytes.Compare(buf[a.k:a.v], buf[b.k:b.v])
	})
	for _, e := range w.ix {
		if err := w.batch.Set(buf[e.k:e.v], buf[e.v:e.end], nil); err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	err := w.batch.Set(metaKey, indexMeta{pos: w.next - 1, end: makeLoc(w.cur.number, w.off)}.encode(), nil)
	if err == nil {
		err = w.batch.Commit(pebble.NoSync)
	}
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

// appendFrame adds rec (its Position set) to the group and returns where
// its frame goes. A frame that does not fit in the current chunk starts the
// next one.
func (w *writer) appendFrame(rec *Record) loc {
	h := len(w.buf)
	w.buf = appendFrameHeader(w.buf, 0, rec.Position, uint32(rec.Position-w.start))
	w.buf = encodeRecord(w.buf, rec)
	binary.LittleEndian.PutUint32(w.buf[h+1:], uint32(len(w.buf)-h-frameHeaderSize))
	w.buf = append(w.buf, frameEnd)
	size := int64(len(w.buf) - h)
	if w.off+size > w.cur.size {
		w.segs[len(w.segs)-1].end = h
		if err := w.nextChunk(size); err != nil && w.failed == nil {
			w.failed = err
		}
		w.segs = append(w.segs, segment{c: w.cur, off: w.off, start: h})
	}
	at := makeLoc(w.cur.number, w.off)
	w.off += size
	w.frames = append(w.frames, h)
	if isCkpt(rec.Position) {
		w.val = binary.BigEndian.AppendUint64(w.val[:0], uint64(at))
		w.set(appendCkptKey(w.key[:0], rec.Position), w.val)
		w.l.addCkpt(rec.Position, at)
	}
	return at
}

// nextChunk moves the writer to a new chunk with room for a frame of size
// bytes. On failure the writer stays where it is and the group fails.
func (w *writer) nextChunk(size int64) error {
	size = max(w.l.chunkSize, (chunkHeaderSize+size+4095)&^4095)
	if size > 1<<32-1 {
		return fmt.Errorf("%w: record of %d bytes", ErrInvalid, size)
	}
	n := w.cur.number + 1
	cs := *w.l.chunks.Load()
	if int(n) < len(cs) { // recovery removes chunks past the end
		return fmt.Errorf("%w: %s exists past the end of the log", ErrCorrupt, chunkName(n))
	}
	c, err := w.prep.take(n, size)
	if err != nil {
		return err
	}
	next := append(cs[:len(cs):len(cs)], c)
	w.l.chunks.Store(&next)
	w.cur, w.off = c, chunkHeaderSize
	return nil
}

// waitPrepared stops the preparer (on Close).
func (w *writer) waitPrepared() { w.prep.stop() }

// apply decides r against the current states and, if it writes, adds its
// records to the group. It reads everything it needs before writing, so an
// error leaves the group untouched.
func (w *writer) apply(r *request) (AppendResult, error) {
	stream := r.stream
	st, err := w.state(stream)
	if err != nil {
		return AppendResult{}, err
	}
	orig, isMeta := originalOf(stream)
	var other *wstate // X for $$X, $$X for X
	if isMeta {
		other, err = w.state(orig)
	} else {
		other, err = w.state(metastreamOf(stream))
	}
	if err != nil {
		return AppendResult{}, err
	}
	var (
		tomb          = st.tomb
		softDeleted   bool // X is soft-deleted (never true for a metastream)
		metaHasEvents bool
		origSoftDel   bool // for $$X: X is soft-deleted before this write
	)
	if isMeta {
		tomb = other.tomb
		origSoftDel = st.meta.softDeleted()
	} else {
		softDeleted = other.meta.softDeleted()
		metaHasEvents = other.last >= 0
	}
	var events []Proposed
	if r.op == opAppend {
		events = r.events
	}
	res, write, err := w.decide(stream, st.num, st.last, tomb, softDeleted, metaHasEvents, r.exp, events, r.op != opAppend)
	if err != nil || !write {
		return res, err
	}
	switch r.op {
	case opDelete:
		if st.last < 0 && other.last < 0 {
			return AppendResult{}, &WrongExpectedVersionError{Stream: stream, Expected: r.exp, Current: -1}
		}
		pos := w.writeMeta(metastreamOf(stream), other, softDeleteData)
		return AppendResult{Position: pos}, nil
	case opTombstone:
		pos := w.next
		w.next++
		rec := Record{Position: pos, Stream: stream, Revision: TombstoneRevision, ID: w.l.newID(), Type: TypeStreamDeleted, Created: w.now}
		w.appendFrame(&rec)
		if st.num == 0 {
			st.num = pos
		}
		st.tomb, st.pos = true, pos
		w.putHead(stream, st)
		return AppendResult{Position: pos}, nil
	}
	if len(events) == 0 {
		return AppendResult{Revision: st.last}, nil
	}
	first := st.last + 1
	pos := w.writeEvents(stream, st, isMeta, events)
	res = AppendResult{Revision: st.last, Position: pos}
	switch {
	case softDeleted:
		// Un-delete X: old metadata with $tb at the first new revision.
		w.writeMeta(metastreamOf(stream), other, withTruncateBefore(other.meta.Raw, first))
	case origSoftDel:
		// Writing $$X of a soft-deleted X un-deletes X too: the new metadata
		// with $tb after X's last event.
		w.writeMeta(stream, st, withTruncateBefore(st.meta.Raw, other.last+1))
	}
	return res, nil
}

// decide applies EventStoreDB's expected-version table and idempotency rules.
// write true: append at cur+1; write false with a nil error: idempotent
// success described by the result. noMatch: the request has one fresh id
// that cannot match (Delete, Tombstone).
func (w *writer) decide(stream string, num uint64, cur int64, tomb, softDeleted, metaHasEvents bool, exp Expected, events []Proposed, noMatch bool) (AppendResult, bool, error) {
	if tomb {
		return AppendResult{}, false, &StreamDeletedError{Stream: stream}
	}
	wev := &WrongExpectedVersionError{Stream: stream, Expected: exp, Current: cur}
	switch exp.Kind {
	case ExpectAny, ExpectStreamExists:
		if exp.Kind == ExpectStreamExists {
			if softDeleted {
				return AppendResult{}, false, &StreamDeletedError{Stream: stream}
			}
			if cur < 0 && !metaHasEvents {
				return AppendResult{}, false, wev
			}
		}
		if noMatch || len(events) == 0 || cur < 0 {
			return AppendResult{}, true, nil
		}
		r, found, err := w.lookupID(stream, num, events[0].ID)
		if err != nil {
			return AppendResult{}, false, err
		}
		if !found {
			return AppendResult{}, true, nil
		}
		var pos uint64
		for k := range events {
			id, p, ok, err := w.idAt(stream, num, r+int64(k))
			if err != nil {
				return AppendResult{}, false, err
			}
			if !ok || id != events[k].ID {
				return AppendResult{}, false, wev
			}
			pos = p
		}
		return AppendResult{Revision: r + int64(len(events)) - 1, Position: pos}, false, nil
	case ExpectNoStream, ExpectRevision:
		n := int64(-1)
		if exp.Kind == ExpectRevision {
			if exp.Revision > math.MaxInt64 {
				return AppendResult{}, false, wev
			}
			n = int64(exp.Revision)
		}
		switch {
		case n == cur:
			return AppendResult{}, true, nil
		case n > cur:
			return AppendResult{}, false, wev
		}
		recreate := softDeleted && exp.Kind == ExpectNoStream
		if noMatch || len(events) == 0 {
			return AppendResult{}, recreate, errIf(!recreate, wev)
		}
		var pos uint64
		for k := range events {
			id, p, ok, err := w.idAt(stream, num, n+1+int64(k))
			if err != nil {
				return AppendResult{}, false, err
			}
			if !ok || id != events[k].ID {
				if k == 0 && recreate {
					return AppendResult{}, true, nil
				}
				return AppendResult{}, false, wev
			}
			pos = p
		}
		return AppendResult{Revision: n + int64(len(events)), Position: pos}, false, nil
	default:
		return AppendResult{}, false, fmt.Errorf("%w: expected kind %d", ErrInvalid, exp.Kind)
	}
}

func errIf(cond bool, err error) error {
	if cond {
		return err
	}
	return nil
}

// writeEvents adds events to stream at st.last+1… and returns the position
// of the last one.
func (w *writer) writeEvents(stream string, st *wstate, isMeta bool, events []Proposed) uint64 {
	var pos uint64
	if st.num == 0 {
		st.num = w.next // the stream's first record
	}
	for i := range events {
		ev := &events[i]
		rev := uint64(st.last + 1)
		pos = w.next
		w.next++
		rec := Record{Position: pos, Stream: stream, Revision: rev, ID: ev.ID, Type: ev.Type, IsJSON: ev.IsJSON, Created: w.now, Data: ev.Data, Metadata: ev.Metadata}
		at := w.appendFrame(&rec)
		w.val = appendEntry(w.val[:0], entry{pos: pos, loc: at})
		w.set(appendRevKey(w.key[:0], st.num, rev), w.val)
		w.val = binary.BigEndian.AppendUint64(w.val[:0], rev)
		w.set(appendIDKey(w.key[:0], st.num, ev.ID), w.val)
		w.pendRev[revKey{stream, rev}] = revVal{ev.ID, pos}
		w.pendID[idKey{stream, ev.ID}] = rev
		st.last, st.pos = int64(rev), pos
	}
	w.putHead(stream, st)
	if isMeta {
		last := &events[len(events)-1]
		st.meta = parseMetadata(last.IsJSON, last.Data)
	}
	return pos
}

// writeMeta writes one $metadata event to the metastream ms.
func (w *writer) writeMeta(ms string, st *wstate, data []byte) uint64 {
	w.meta1[0] = Proposed{ID: w.l.newID(), Type: TypeMetadata, IsJSON: true, Data: data}
	pos := w.writeEvents(ms, st, true, w.meta1[:])
	w.meta1[0] = Proposed{}
	return pos
}

func (w *writer) putHead(stream string, st *wstate) {
	w.val = appendHeadValue(w.val[:0], st.head)
	w.set(appendHeadKey(w.key[:0], stream), w.val)
}

// ixEntry is one index entry of the group: key ixBuf[k:v], value
// ixBuf[v:end].
type ixEntry struct{ k, v, end int }

// set adds an index entry to the group; k and v are copied. The entries
// go to the batch in key order when the group commits (commitIndex).
func (w *writer) set(k, v []byte) {
	w.key = k
	e := ixEntry{k: len(w.ixBuf)}
	w.ixBuf = append(w.ixBuf, k...)
	e.v = len(w.ixBuf)
	w.ixBuf = append(w.ixBuf, v...)
	e.end = len(w.ixBuf)
	w.ix = append(w.ix, e)
}

// get reads key from the index (the groups committed before this one) and
// passes the value to f before releasing it.
func (w *writer) get(key []byte, f func([]byte) error) (bool, error) {
	v, closer, err := w.l.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("eventlog: %w", err)
	}
	defer closer.Close()
	return true, f(v)
}

// state returns the writer's state of stream, loading it on a cache miss.
// Every stream the group writes is in the cache, so a miss reads only
// what earlier groups wrote.
func (w *writer) state(stream string) (*wstate, error) {
	if st, ok := w.cache[stream]; ok {
		return st, nil
	}
	st := &wstate{head: head{last: -1}}
	w.getKey = appendHeadKey(w.getKey[:0], stream)
	if _, err := w.get(w.getKey, func(v []byte) (err error) {
		st.head, err = decodeHeadValue(v)
		return err
	}); err != nil {
		return nil, err
	}
	if _, isMeta := originalOf(stream); isMeta && st.last >= 0 {
		rec, ok, err := w.recordAt(st.num, st.last)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s@%d missing", ErrCorrupt, stream, st.last)
		}
		st.meta = parseMetadata(rec.IsJSON, rec.Data)
	}
	w.cache[stream] = st
	return st, nil
}

// lookupID finds id in the idempotency index of stream (number num; this
// group's entries first).
func (w *writer) lookupID(stream string, num uint64, id uuid.UUID) (int64, bool, error) {
	if rev, ok := w.pendID[idKey{stream, id}]; ok {
		return int64(rev), true, nil
	}
	if num == 0 {
		return 0, false, nil // no records yet
	}
	var rev uint64
	w.getKey = appendIDKey(w.getKey[:0], num, id)
	ok, err := w.get(w.getKey, func(v []byte) (err error) {
		rev, err = decodeU64(v)
		return err
	})
	if err != nil || !ok {
		return 0, false, err
	}
	return int64(rev), true, nil
}

// entryAt returns the index entry of event rev of stream number num from
// earlier groups.
func (w *writer) entryAt(num uint64, rev int64) (entry, bool, error) {
	if rev < 0 || num == 0 {
		return entry{}, false, nil
	}
	var e entry
	w.getKey = appendRevKey(w.getKey[:0], num, uint64(rev))
	ok, err := w.get(w.getKey, func(v []byte) (err error) {
		e, err = decodeEntry(v)
		return err
	})
	return e, ok, err
}

// idAt returns the id and position of event rev of stream (number num).
func (w *writer) idAt(stream string, num uint64, rev int64) (uuid.UUID, uint64, bool, error) {
	if rev >= 0 {
		if v, ok := w.pendRev[revKey{stream, uint64(rev)}]; ok {
			return v.id, v.pos, true, nil // written by this group
		}
	}
	e, ok, err := w.entryAt(num, rev)
	if err != nil || !ok {
		return uuid.UUID{}, 0, false, err
	}
	var rec Record
	if w.rbuf, err = w.l.readRecord(w.rbuf, e, &rec); err != nil {
		return uuid.UUID{}, 0, false, err
	}
	return rec.ID, e.pos, true, nil
}

// recordAt reads event rev of stream number num from earlier groups.
func (w *writer) recordAt(num uint64, rev int64) (Record, bool, error) {
	e, ok, err := w.entryAt(num, rev)
	if err != nil || !ok {
		return Record{}, false, err
	}
	var rec Record
	w.rbuf, err = w.l.readRecord(w.rbuf, e, &rec)
	return rec, err == nil, err
}
