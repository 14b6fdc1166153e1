package eventlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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

// request is one Append, Delete or Tombstone on its way through the writer.
type request struct {
	ctx    context.Context
	op     opKind
	stream string
	exp    Expected
	events []Proposed

	res  AppendResult // Delete/Tombstone: res.Position
	err  error
	done chan struct{} // closed by the writer once res/err are final
}

// wstate is the writer's view of one stream.
type wstate struct {
	head
	// meta is, for a metastream $$X, the metadata its last event stands for
	// (the effective metadata of X).
	meta StreamMetadata
}

// writer owns every mutation of the log; only its goroutine touches it.
type writer struct {
	l     *Log
	next  uint64 // position of the next record
	cache map[string]*wstate
	batch *pebble.Batch
	now   time.Time

	pending []*request
	key     []byte
	val     []byte
	getKey  []byte
	meta1   [1]Proposed
}

func newWriter(l *Log, last uint64) *writer {
	return &writer{l: l, next: last + 1, cache: make(map[string]*wstate)}
}

// run is the writer goroutine: group commits until Close.
func (w *writer) run() {
	defer close(w.l.done)
	for {
		// Close wins over queued requests: they are answered with ErrClosed.
		select {
		case <-w.l.closing:
			w.refuseQueued()
			return
		default:
		}
		select {
		case r := <-w.l.reqs:
			w.pending = append(w.pending[:0], r)
		drain:
			for len(w.pending) < w.l.maxBatch {
				select {
				case r := <-w.l.reqs:
					w.pending = append(w.pending, r)
				default:
					break drain
				}
			}
			w.commit()
		case <-w.l.closing:
			w.refuseQueued()
			return
		}
	}
}

// refuseQueued answers every queued request with ErrClosed. Close has set
// closed before closing the channel, so no sender can add to reqs any more.
func (w *writer) refuseQueued() {
	for {
		select {
		case r := <-w.l.reqs:
			r.err = ErrClosed
			close(r.done)
		default:
			return
		}
	}
}

// commit decides every pending request into one batch, syncs it, publishes
// the head and answers the requests.
func (w *writer) commit() {
	if len(w.cache) > maxCachedStreams {
		w.cache = make(map[string]*wstate)
	}
	w.batch = w.l.db.NewIndexedBatch()
	w.now = w.l.now().UTC()
	start := w.next
	for _, r := range w.pending {
		// A request cancelled before the writer took it is not written.
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		r.res, r.err = w.apply(r)
	}
	var err error
	if w.batch.Count() > 0 {
		err = w.batch.Commit(pebble.Sync)
		w.l.syncs.Add(1)
	}
	if cerr := w.batch.Close(); err == nil {
		err = cerr
	}
	w.batch = nil
	if err != nil {
		// Nothing of this batch may be assumed written: forget the states
		// it changed and answer everyone with the error.
		w.cache = make(map[string]*wstate)
		w.next = start
		for _, r := range w.pending {
			if r.err == nil {
				r.res, r.err = AppendResult{}, fmt.Errorf("eventlog: commit: %w", err)
			}
		}
	} else if w.next != start {
		w.l.publish(w.next - 1)
	}
	for i, r := range w.pending {
		close(r.done)
		w.pending[i] = nil
	}
}

// apply decides r against the current states and, if it writes, adds its
// records to the batch. It reads everything it needs before writing, so an
// error leaves the batch untouched.
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
	res, write, err := w.decide(stream, st.last, tomb, softDeleted, metaHasEvents, r.exp, events, r.op != opAppend)
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
		rec := Record{Stream: stream, Revision: TombstoneRevision, ID: w.l.newID(), Type: TypeStreamDeleted, Created: w.now}
		w.val = encodeRecord(w.val[:0], &rec)
		w.set(appendLogKey(w.key[:0], pos), w.val)
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
func (w *writer) decide(stream string, cur int64, tomb, softDeleted, metaHasEvents bool, exp Expected, events []Proposed, noMatch bool) (AppendResult, bool, error) {
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
		r, found, err := w.lookupID(stream, events[0].ID)
		if err != nil {
			return AppendResult{}, false, err
		}
		if !found {
			return AppendResult{}, true, nil
		}
		var pos uint64
		for k := range events {
			id, p, ok, err := w.idAt(stream, r+int64(k))
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
			id, p, ok, err := w.idAt(stream, n+1+int64(k))
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
	for i := range events {
		ev := &events[i]
		rev := uint64(st.last + 1)
		pos = w.next
		w.next++
		rec := Record{Stream: stream, Revision: rev, ID: ev.ID, Type: ev.Type, IsJSON: ev.IsJSON, Created: w.now, Data: ev.Data, Metadata: ev.Metadata}
		w.val = encodeRecord(w.val[:0], &rec)
		w.set(appendLogKey(w.key[:0], pos), w.val)
		w.val = binary.BigEndian.AppendUint64(w.val[:0], pos)
		w.set(appendRevKey(w.key[:0], stream, rev), w.val)
		w.val = binary.BigEndian.AppendUint64(w.val[:0], rev)
		w.set(appendIDKey(w.key[:0], stream, ev.ID), w.val)
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

// set adds a key to the batch; Set copies key and value. It fails only on
// a closed or read-only batch, a programming error.
func (w *writer) set(k, v []byte) {
	w.key = k
	if err := w.batch.Set(k, v, nil); err != nil {
		panic(fmt.Sprintf("eventlog: batch set: %v", err))
	}
}

// get reads key through the batch (so this batch's earlier writes count)
// and passes the value to f before releasing it.
func (w *writer) get(key []byte, f func([]byte) error) (bool, error) {
	v, closer, err := w.batch.Get(key)
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
		rec, ok, err := w.recordAt(stream, st.last)
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

// lookupID finds id in stream's idempotency index.
func (w *writer) lookupID(stream string, id uuid.UUID) (int64, bool, error) {
	var rev uint64
	w.getKey = appendIDKey(w.getKey[:0], stream, id)
	ok, err := w.get(w.getKey, func(v []byte) (err error) {
		rev, err = decodeU64(v)
		return err
	})
	if err != nil || !ok {
		return 0, false, err
	}
	return int64(rev), true, nil
}

// posAt returns the position of stream's event rev.
func (w *writer) posAt(stream string, rev int64) (uint64, bool, error) {
	if rev < 0 {
		return 0, false, nil
	}
	var pos uint64
	w.getKey = appendRevKey(w.getKey[:0], stream, uint64(rev))
	ok, err := w.get(w.getKey, func(v []byte) (err error) {
		pos, err = decodeU64(v)
		return err
	})
	return pos, ok, err
}

// idAt returns the id and position of stream's event rev.
func (w *writer) idAt(stream string, rev int64) (uuid.UUID, uint64, bool, error) {
	pos, ok, err := w.posAt(stream, rev)
	if err != nil || !ok {
		return uuid.UUID{}, 0, false, err
	}
	var id uuid.UUID
	w.getKey = appendLogKey(w.getKey[:0], pos)
	ok, err = w.get(w.getKey, func(v []byte) (err error) {
		id, err = decodeRecordID(v)
		return err
	})
	if err == nil && !ok {
		err = fmt.Errorf("%w: %s@%d: position %d missing", ErrCorrupt, stream, rev, pos)
	}
	return id, pos, ok, err
}

// recordAt reads stream's event rev.
func (w *writer) recordAt(stream string, rev int64) (Record, bool, error) {
	pos, ok, err := w.posAt(stream, rev)
	if err != nil || !ok {
		return Record{}, false, err
	}
	var rec Record
	w.getKey = appendLogKey(w.getKey[:0], pos)
	ok, err = w.get(w.getKey, func(v []byte) error { return decodeRecord(pos, v, &rec) })
	return rec, ok, err
}
