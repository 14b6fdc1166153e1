package eventlog

import (
	"bytes"
	"errors"
	"fmt"
)

// Recovery on Open: find the end of the durable log in the chunk files,
// tell a torn tail from corruption, and index what the index lacks. The
// rules are in doc.go ("Recovery").

// errIndexAhead: the index refers to records the chunk files do not hold
// (a damaged or truncated chunk below the indexed position). Open then
// rebuilds the index from the first chunk.
var errIndexAhead = errors.New("eventlog: index ahead of the log")

// sectorSize is the unit of atomic writes assumed when telling a torn write
// from corruption.
const sectorSize = 512

// logTail is where the recovered log ends.
type logTail struct {
	next uint64 // position of the next record
	end  loc    // where its frame goes

	dropped bool // a torn group was dropped
}

// pendingRec is a record of a group not yet known to be complete.
type pendingRec struct {
	rec Record
	at  loc
}

// scanner walks the chunk files from the index's progress to the end.
type scanner struct {
	chunks []*chunk
	rb     *rebuilder
	ipos   uint64 // positions up to ipos are indexed already

	expected uint64 // next position; 0 while verifying before the progress point
	rest     uint32 // records of the current group still to come
	gFirst   uint64 // first position of the current group
	gLoc     loc    // location of the current group's first frame
	gKnown   bool   // gLoc is known
	group    []pendingRec
}

// recoverChunks scans from meta (the index's progress) to the end of the
// log, indexing every complete group it finds, and returns the tail.
func recoverChunks(chunks []*chunk, rb *rebuilder, meta indexMeta) (logTail, error) {
	last := uint32(len(chunks) - 1)
	if meta.end.chunk() > last {
		return logTail{}, errIndexAhead
	}
	s := &scanner{chunks: chunks, rb: rb, ipos: meta.pos, expected: meta.pos + 1}
	start := meta.end
	if start.chunk() == last && start.off() > chunkHeaderSize {
		// Verify the whole last chunk, also below the progress point: a
		// flipped byte there must fail Open, not wait for a read. Start
		// where the group of its first frame starts, so that a group whose
		// beginning (in the previous chunk) was lost is seen as such.
		// A group may span several chunks. Every chunk but the last
		// starts with a frame (the writer moves on only when a frame
		// does not fit), so a chunk before the last whose first frame is
		// missing lost data the index may cover: rebuild the index.
		v := last
		for v > 0 {
			f, ok, err := firstFrame(chunks[v])
			if err != nil {
				return logTail{}, err
			}
			if !ok && v < last {
				return logTail{}, errIndexAhead
			}
			if !ok || f.first == 0 {
				break
			}
			v--
		}
		start, s.expected = makeLoc(v, chunkHeaderSize), 0
	}
	if start.off() < chunkHeaderSize {
		return logTail{}, fmt.Errorf("eventlog: index: %w: progress at offset %d", ErrCorrupt, start.off())
	}
	for c := start.chunk(); c <= last; c++ {
		ch := chunks[c]
		data, err := ch.readAll()
		if err != nil {
			return logTail{}, err
		}
		n := int64(len(data)) // past n the chunk reads as zeros
		off := int64(chunkHeaderSize)
		if c == start.chunk() {
			off = start.off()
		}
		for {
			if off >= n || off+frameOverhead > ch.size || data[off] == 0 {
				if off >= n || allZero(data[off:]) {
					if c < last {
						if s.expected == 0 {
							// Verifying, and this chunk holds no frame
							// although a later one does: data was lost.
							return logTail{}, errIndexAhead
						}
						break // the writer moved on to the next chunk here
					}
					if s.rest > 0 { // a group cut short, zeros after it
						return s.torn(c, off)
					}
					return s.clean(makeLoc(c, off))
				}
				return s.bad(c, off, data)
			}
			f, ok := parseFrameHeader(data[off:], n-off)
			if !ok || !checkFrame(data[off:off+f.size()], f) || !s.fits(f) {
				return s.bad(c, off, data)
			}
			if err := s.accept(f, data[off+frameHeaderSize:off+frameHeaderSize+int64(f.n)], makeLoc(c, off)); err != nil {
				return logTail{}, err
			}
			off += f.size()
		}
	}
	// Unreachable: the last chunk ends the loop through clean, torn or bad.
	return logTail{}, fmt.Errorf("eventlog: %w: scan ran past the last chunk", ErrCorrupt)
}

// firstFrame reads the header of the first frame of c; ok false if there
// is none or it does not parse.
func firstFrame(c *chunk) (frame, bool, error) {
	b := make([]byte, frameHeaderSize)
	if err := c.readAt(b, chunkHeaderSize); err != nil {
		return frame{}, false, err
	}
	f, ok := parseFrameHeader(b, c.size-chunkHeaderSize)
	return f, ok, nil
}

// fits reports whether f continues the log where the scan is.
func (s *scanner) fits(f frame) bool {
	if s.expected == 0 { // first frame verified below the progress point
		return f.pos <= s.ipos+1
	}
	if f.pos != s.expected {
		return false
	}
	if s.rest > 0 {
		return f.groupFirst() == s.gFirst && f.rest == s.rest-1
	}
	return f.first == 0
}

// accept takes a valid frame: once its group is complete, the group's
// records not yet indexed are indexed.
func (s *scanner) accept(f frame, payload []byte, at loc) error {
	if f.first == 0 {
		s.gFirst, s.gLoc, s.gKnown = f.pos, at, true
	} else if s.expected == 0 {
		s.gFirst, s.gKnown = f.groupFirst(), false
	}
	s.expected, s.rest = f.pos+1, f.rest
	if f.pos > s.ipos {
		var rec Record
		if err := decodeRecord(f.pos, payload, &rec); err != nil {
			return fmt.Errorf("eventlog: %s at %d: %w", chunkName(at.chunk()), at.off(), err)
		}
		s.group = append(s.group, pendingRec{rec: rec, at: at})
	}
	if f.rest == 0 {
		for i := range s.group {
			if err := s.rb.add(&s.group[i].rec, s.group[i].at); err != nil {
				return err
			}
		}
		s.group = s.group[:0]
	}
	return nil
}

// clean ends the scan at end, after a complete group.
func (s *scanner) clean(end loc) (logTail, error) {
	if s.expected == 0 || s.expected-1 < s.ipos {
		return logTail{}, errIndexAhead // indexed records are missing
	}
	next := s.expected
	if next-1 > s.ipos {
		if err := s.rb.flush(&indexMeta{pos: next - 1, end: end}); err != nil {
			return logTail{}, err
		}
	}
	return logTail{next: next, end: end}, nil
}

// bad handles an invalid frame at (c, off): the torn tail of the last group
// written, or corruption.
func (s *scanner) bad(c uint32, off int64, data []byte) (logTail, error) {
	if s.expected == 0 || s.expected <= s.ipos {
		return logTail{}, errIndexAhead // damage below the indexed position
	}
	groupFirst := s.expected
	if s.rest > 0 {
		groupFirst = s.gFirst
	}
	if later, at, err := s.laterGroup(c, off, data, groupFirst); err != nil {
		return logTail{}, err
	} else if later {
		return logTail{}, fmt.Errorf("eventlog: %w: %s: bad record frame at offset %d (position %d), followed by a later group at %s offset %d: the log is damaged before its end",
			ErrCorrupt, chunkName(c), off, s.expected, chunkName(at.chunk()), at.off())
	}
	if !tearEvidence(data, off, int64(len(data))) && !s.strandedFrame(data, off, groupFirst) && !s.cutShort(c, data, off) {
		return logTail{}, fmt.Errorf("eventlog: %w: %s: bad record frame at offset %d (position %d) without the zeroed sector of a torn write",
			ErrCorrupt, chunkName(c), off, s.expected)
	}
	return s.torn(c, off)
}

// torn drops the current group (never acknowledged: its sync did not
// complete): it zeroes its chunk from the group's first frame on; the
// chunks after that one are removed by Open (Log.recover).
func (s *scanner) torn(c uint32, off int64) (logTail, error) {
	tail := logTail{next: s.expected, end: makeLoc(c, off)}
	if s.rest > 0 {
		if !s.gKnown {
			return logTail{}, errIndexAhead
		}
		tail = logTail{next: s.gFirst, end: s.gLoc}
	}
	if tail.next-1 < s.ipos {
		return logTail{}, errIndexAhead
	}
	s.group = s.group[:0]
	if err := zeroFrom(s.chunks[tail.end.chunk()], tail.end.off()); err != nil {
		return logTail{}, err
	}
	s.expected, s.rest = tail.next, 0
	tail, err := s.clean(tail.end)
	tail.dropped = true
	return tail, err
}

// laterGroup looks for a valid frame of a group after groupFirst anywhere
// after (c, off): a group is only written after the previous one was
// synced, so finding one proves the damaged group was durable.
func (s *scanner) laterGroup(c uint32, off int64, data []byte, groupFirst uint64) (bool, loc, error) {
	for n := c; int(n) < len(s.chunks); n++ {
		from := int64(chunkHeaderSize)
		if n == c {
			from = off + 1
		} else {
			var err error
			if data, err = s.chunks[n].readAll(); err != nil {
				return false, 0, err
			}
		}
		for i := from; i < int64(len(data)); {
			j := bytes.IndexByte(data[i:], frameMagic)
			if j < 0 {
				break
			}
			i += int64(j)
			if f, ok := parseFrameHeader(data[i:], int64(len(data))-i); ok && f.groupFirst() > groupFirst &&
				f.pos >= s.expected && checkFrame(data[i:i+f.size()], f) {
				return true, makeLoc(n, i), nil
			}
			i++
		}
	}
	return false, 0, nil
}

// cutShort reports whether the frame at off runs past the end of its file
// (a chunk file truncated, or extended by a write whose new size was not
// synced).
func (s *scanner) cutShort(c uint32, data []byte, off int64) bool {
	end := off + frameHeaderSize
	if f, ok := parseFrameHeader(data[off:], int64(len(data))-off); ok {
		end = off + f.size()
	}
	return end > s.chunks[c].fileSize
}

// strandedFrame reports whether the frame at off is a valid frame of the
// unfinished group groupFirst, beyond the expected position: the group's
// earlier frames, at the end of the previous chunk, were lost (read as
// zeros), so the group was being written when the crash came.
func (s *scanner) strandedFrame(data []byte, off int64, groupFirst uint64) bool {
	f, ok := parseFrameHeader(data[off:], int64(len(data))-off)
	return ok && f.pos > s.expected && f.groupFirst() == groupFirst && checkFrame(data[off:off+f.size()], f)
}

// tearEvidence reports whether the frame at off shows what an interrupted
// write leaves: a sector (or the part of it the frame covers) still all
// zeros. A frame starts and ends with a non-zero byte, so an intact frame
// has no such sector unless it carries 512 zero bytes of data.
func tearEvidence(data []byte, off, limit int64) bool {
	end := off + frameHeaderSize
	if f, ok := parseFrameHeader(data[off:], limit-off); ok {
		end = off + f.size()
	}
	end = min(end, limit)
	for s := off - off%sectorSize; s < end; s += sectorSize {
		if allZero(data[max(s, off):min(s+sectorSize, end)]) {
			return true
		}
	}
	return false
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// zeroFrom overwrites c from off to its last non-zero byte with zeros, and
// restores the file's full size if it was cut short, then syncs.
func zeroFrom(c *chunk, off int64) error {
	if off >= c.fileSize {
		return nil
	}
	data := make([]byte, min(c.fileSize, c.size)-off)
	if err := c.readAt(data, off); err != nil {
		return err
	}
	n := len(data)
	for n > 0 && data[n-1] == 0 {
		n--
	}
	if n > 0 {
		if _, err := c.f.WriteAt(make([]byte, n), off); err != nil {
			return fmt.Errorf("eventlog: zero torn tail of %s: %w", chunkName(c.number), err)
		}
	}
	if err := c.f.SyncData(); err != nil {
		return fmt.Errorf("eventlog: sync %s: %w", chunkName(c.number), err)
	}
	return nil
}
