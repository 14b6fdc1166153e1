// Reading the source. The reader goroutine reads the group's stream (or $all
// through its filter) page by page from the group's next position, resolves
// links when the group asks for it, and fills the buffer up to the group's
// buffer sizes; it waits for room (while behind: for a whole page), and for
// new events once it reached the end (live). A read error other than
// cancellation faults the group: its clients are dropped, as a real node
// drops them.

package psub

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

func (g *group) readLoop() {
	defer g.wg.Done()
	ctx := g.ctx
	for {
		g.mu.Lock()
		if g.live && int(g.cfg.LiveBufferSize) <= len(g.buffer) {
			g.live = false // the buffer is full: behind until consumers catch up
		}
		room := int(g.cfg.HistoryBufferSize) - len(g.buffer)
		if g.live {
			room = int(g.cfg.LiveBufferSize) - len(g.buffer)
		}
		wait := !g.live && !g.historyRoomLocked()
		next, prev := g.nextRead, g.lastScanned
		g.mu.Unlock()
		if wait {
			select {
			case <-ctx.Done():
				return
			case <-g.readerWake:
			}
			continue
		}
		n := min(room, int(g.cfg.ReadBatchSize))
		head := g.s.log.Head()
		msgs, scanned, skipped, more, err := g.readPage(ctx, next, prev, n)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, eventlog.ErrClosed) {
				return
			}
			g.fault(err)
			return
		}
		g.mu.Lock()
		g.buffer = append(g.buffer, msgs...)
		g.order = append(g.order, msgs...)
		if scanned > g.lastScanned {
			g.lastScanned = scanned
			g.nextRead = uint64(scanned) + 1
		}
		if len(msgs) > 0 {
			g.lastKnown = int64(msgs[len(msgs)-1].seq)
		}
		g.processed += skipped
		g.live = !more
		g.loaded = true
		g.dispatchLocked()
		g.mu.Unlock()
		if skipped > 0 {
			signal(g.workWake)
		}
		if !more {
			if err := g.s.log.Wait(ctx, head); err != nil {
				return
			}
		}
	}
}

// historyRoomLocked reports whether the buffer has room for a whole page of
// history. As EventStoreDB's StreamBuffer.CanAccept(ReadBatchSize), a group
// that is behind reads a page only when all of it fits: a few acks do not
// each start a read of a few events.
func (g *group) historyRoomLocked() bool {
	return int(g.cfg.HistoryBufferSize)-len(g.buffer) > int(g.cfg.ReadBatchSize)
}

// readPage reads up to n source records from next; it returns the messages to
// deliver (prev filled in), the last sequence number scanned, how many records
// the filter skipped, and whether more may follow right away.
func (g *group) readPage(ctx context.Context, next uint64, prev int64, n int) ([]*message, int64, int64, bool, error) {
	recs, err := g.source(ctx, next, n)
	if errors.Is(err, eventlog.ErrStreamNotFound) {
		return nil, prev, 0, false, nil
	}
	if err != nil {
		return nil, prev, 0, false, err
	}
	msgs := make([]*message, 0, len(recs))
	// One allocation for the page's messages, as for its records (a
	// message kept for a retry keeps its page's records alive either way).
	slab := make([]message, len(recs))
	var skipped int64
	for i := range recs {
		r := &recs[i]
		seq := r.Revision
		if g.cfg.isAll() {
			seq = r.Position
			if defaultAllExcluded(r.Stream) {
				// Never delivered, and not counted towards a checkpoint:
				// the group's own checkpoint writes must not feed more.
				prev = int64(seq)
				continue
			}
			if !g.filter.match(r.Stream, r.Type) {
				prev = int64(seq)
				skipped++
				continue
			}
		}
		m := &slab[i]
		if err := g.initMessage(ctx, m, r); err != nil {
			return nil, prev, 0, false, err
		}
		m.seq, m.prev = seq, prev
		msgs = append(msgs, m)
		prev = int64(seq)
	}
	return msgs, prev, skipped, len(recs) == n, nil
}

// readAhead is the fewest source records the reader reads from the log at a
// time. A read of the log has a fixed cost (the stream's head and metadata,
// an index iterator) of about as much as 100 records; with pages of
// ReadBatchSize (20 by default) it would dominate. What is read beyond the
// page stays with the reader (g.ahead) and is handed out by later pages, so
// the buffer still fills a page at a time. The reader holds at most as many
// records as the history buffer does (so at most twice the buffer in all).
// Like the buffer, what was read ahead is delivered even if the stream is
// deleted or truncated meanwhile.
const readAhead = 500

// source returns up to n source records from next: from what was read
// ahead if it holds n records from next, otherwise from a fresh read of at
// least n and up to readAhead records. Only the reader goroutine calls it.
func (g *group) source(ctx context.Context, next uint64, n int) ([]eventlog.Record, error) {
	if g.aheadFrom != next || len(g.ahead) < n {
		g.ahead = nil
		want := max(n, min(readAhead, int(g.cfg.HistoryBufferSize)))
		var err error
		if g.cfg.isAll() {
			g.ahead, err = g.s.log.ReadAll(ctx, eventlog.Forwards, next, want)
		} else {
			g.ahead, err = g.s.log.ReadStream(ctx, g.cfg.Stream, eventlog.Forwards, next, want)
		}
		if err != nil {
			return nil, err
		}
	}
	k := min(n, len(g.ahead))
	recs := g.ahead[:k:k]
	g.ahead = g.ahead[k:]
	if len(recs) > 0 {
		last := recs[len(recs)-1]
		g.aheadFrom = last.Revision + 1
		if g.cfg.isAll() {
			g.aheadFrom = last.Position + 1
		}
	}
	if len(g.ahead) == 0 {
		g.ahead = nil
	}
	return recs, nil
}

// parseLink reads the "<n>@<stream>" data of a link event.
func parseLink(data []byte) (string, uint64, bool) {
	num, stream, ok := strings.Cut(string(data), "@")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return stream, n, true
}

// initMessage fills m, a zero message, for the source record r, resolving
// a link if the group asks for it.
func (g *group) initMessage(ctx context.Context, m *message, r *eventlog.Record) error {
	m.id, m.pos, m.event = r.ID, r.Position, r
	if !g.cfg.ResolveLinkTos || r.Type != eventlog.TypeLink {
		return nil
	}
	stream, n, ok := parseLink(r.Data)
	if !ok {
		return nil // not a link after all: delivered unresolved
	}
	m.link = r
	m.event = nil
	target, found, err := g.s.log.ReadEvent(ctx, stream, n)
	if err != nil {
		return err
	}
	if found {
		m.event = &target
	}
	return nil
}

// fault drops every client after a read error (the source was deleted).
func (g *group) fault(err error) {
	g.s.logger().Warn("persistent subscription faulted", "group", g.key, "err", err)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faulted = err
	for _, c := range g.clients {
		g.dropLocked(c, newGroupError(ErrDropped, g.cfg.Stream, g.cfg.Group, err.Error()))
	}
}
