package eventlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The index in Pebble; the key layout is in doc.go.

// ckptEvery: the index keeps the location of every ckptEvery-th position
// ('p' keys), where $all reads start scanning.
const ckptEvery = 32

// entry is an 's' value: where stream revision lives.
type entry struct {
	pos uint64
	loc loc
}

func appendEntry(dst []byte, e entry) []byte {
	dst = binary.BigEndian.AppendUint64(dst, e.pos)
	return binary.BigEndian.AppendUint64(dst, uint64(e.loc))
}

func decodeEntry(b []byte) (entry, error) {
	if len(b) != 16 {
		return entry{}, fmt.Errorf("%w: bad stream index value (%d bytes)", ErrCorrupt, len(b))
	}
	return entry{pos: binary.BigEndian.Uint64(b), loc: loc(binary.BigEndian.Uint64(b[8:]))}, nil
}

// isCkpt reports whether pos gets a 'p' key.
func isCkpt(pos uint64) bool { return (pos-1)%ckptEvery == 0 }

func appendCkptKey(dst []byte, pos uint64) []byte {
	dst = append(dst, prefixCkpt)
	return binary.BigEndian.AppendUint64(dst, pos)
}

// indexMeta is the value of metaKey.
type indexMeta struct {
	pos uint64 // last indexed position, 0: none
	end loc    // location just past pos's frame
}

func (m indexMeta) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, m.pos)
	return binary.BigEndian.AppendUint64(b, uint64(m.end))
}

func readIndexMeta(db *pebble.DB) (indexMeta, bool, error) {
	v, closer, err := db.Get(metaKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return indexMeta{}, false, nil
	}
	if err != nil {
		return indexMeta{}, false, fmt.Errorf("eventlog: index: %w", err)
	}
	defer closer.Close()
	if len(v) != 16 {
		return indexMeta{}, false, fmt.Errorf("eventlog: index: %w: bad progress value", ErrCorrupt)
	}
	return indexMeta{pos: binary.BigEndian.Uint64(v), end: loc(binary.BigEndian.Uint64(v[8:]))}, true, nil
}

// loadCkpts reads every 'p' key into memory: ckpts[i] is the location of
// position i*ckptEvery+1.
func loadCkpts(db *pebble.DB, upTo uint64) ([]loc, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixCkpt}, UpperBound: []byte{prefixCkpt + 1}})
	if err != nil {
		return nil, fmt.Errorf("eventlog: index: %w", err)
	}
	defer it.Close()
	var out []loc
	for valid := it.First(); valid; valid = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 9 || len(v) != 8 {
			return nil, fmt.Errorf("eventlog: index: %w: bad checkpoint", ErrCorrupt)
		}
		pos := binary.BigEndian.Uint64(k[1:])
		if pos > upTo {
			break
		}
		if pos != uint64(len(out))*ckptEvery+1 {
			return nil, fmt.Errorf("eventlog: index: %w: checkpoint %d out of sequence", ErrCorrupt, pos)
		}
		out = append(out, loc(binary.BigEndian.Uint64(v)))
	}
	return out, it.Error()
}

// rebuilder brings the index up to date from records found in the chunk
// files (on Open, after a crash or a migration). It writes in batches
// without sync; progress (metaKey) is written last, with the heads, so an
// interrupted rebuild starts again from the previous progress.
type rebuilder struct {
	db    *pebble.DB
	batch *pebble.Batch
	heads map[string]*head
	key   []byte
	val   []byte
	n     int
}

const rebuildBatch = 4096

func newRebuilder(db *pebble.DB) *rebuilder {
	return &rebuilder{db: db, batch: db.NewBatch(), heads: map[string]*head{}}
}

func (r *rebuilder) set(k, v []byte) error {
	r.key = k
	return r.batch.Set(k, v, nil)
}

func (r *rebuilder) head(stream string) (*head, error) {
	if h, ok := r.heads[stream]; ok {
		return h, nil
	}
	h := &head{last: -1}
	v, closer, err := r.db.Get(appendHeadKey(nil, stream))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("eventlog: index: %w", err)
	default:
		*h, err = decodeHeadValue(v)
		closer.Close()
		if err != nil {
			return nil, err
		}
	}
	r.heads[stream] = h
	return h, nil
}

// add indexes rec, found at l.
func (r *rebuilder) add(rec *Record, l loc) error {
	h, err := r.head(rec.Stream)
	if err != nil {
		return err
	}
	if h.num == 0 {
		h.num = rec.Position
	}
	if rec.Revision == TombstoneRevision {
		h.tomb = true
	} else {
		r.val = appendEntry(r.val[:0], entry{pos: rec.Position, loc: l})
		if err := r.set(appendRevKey(r.key[:0], h.num, rec.Revision), r.val); err != nil {
			return err
		}
		r.val = binary.BigEndian.AppendUint64(r.val[:0], rec.Revision)
		if err := r.set(appendIDKey(r.key[:0], h.num, rec.ID), r.val); err != nil {
			return err
		}
		h.last = max(h.last, int64(rec.Revision))
	}
	h.pos = max(h.pos, rec.Position)
	if isCkpt(rec.Position) {
		r.val = binary.BigEndian.AppendUint64(r.val[:0], uint64(l))
		if err := r.set(appendCkptKey(r.key[:0], rec.Position), r.val); err != nil {
			return err
		}
	}
	if r.n++; r.n%rebuildBatch == 0 {
		return r.flush(nil)
	}
	return nil
}

// flush writes the heads and the batch; with meta, also the progress.
func (r *rebuilder) flush(meta *indexMeta) error {
	for stream, h := range r.heads {
		r.val = appendHeadValue(r.val[:0], *h)
		if err := r.set(appendHeadKey(r.key[:0], stream), r.val); err != nil {
			return err
		}
	}
	clear(r.heads)
	if meta != nil {
		if err := r.batch.Set(metaKey, meta.encode(), nil); err != nil {
			return err
		}
	}
	err := r.batch.Commit(pebble.NoSync)
	if cerr := r.batch.Close(); err == nil {
		err = cerr
	}
	r.batch = r.db.NewBatch()
	if err != nil {
		return fmt.Errorf("eventlog: index: %w", err)
	}
	return nil
}

func (r *rebuilder) close() { _ = r.batch.Close() }
