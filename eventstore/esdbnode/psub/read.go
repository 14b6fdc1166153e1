// Reading the source. The reader goroutine reads the group's stream (or $all
// through its filter) page by page from the group's next position, resolves
// links when the group asks for it, and fills the buffer up to the group's
// buffer sizes; it waits for room, and for new events once it reached the
// end (live). A read error other than cancellation faults the group: its
// clients are dropped, as a real node drops them.

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
		limit := int(g.cfg.HistoryBufferSize)
		if g.live {
			limit = int(g.cfg.LiveBufferSize)
		}
		room := limit - len(g.buffer)
		if room <= 0 {
			g.live = false // the buffer is full: behind until consumers catch up
		}
		next, prev := g.nextRead, g.lastScanned
		g.mu.Unlock()
		if room <= 0 {
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

// readPage reads up to n source records from next; it returns the messages to
// deliver (prev filled in), the last sequence number scanned, how many records
// the filter skipped, and whether more may follow right away.
func (g *group) readPage(ctx context.Context, next uint64, prev int64, n int) ([]*message, int64, int64, bool, error) {
	var recs []eventlog.Record
	var err error
	if g.cfg.isAll() {
		recs, err = g.s.log.ReadAll(ctx, eventlog.Forwards, next, n)
	} else {
		recs, err = g.s.log.ReadStream(ctx, g.cfg.Stream, eventlog.Forwards, next, n)
		if errors.Is(err, eventlog.ErrStreamNotFound) {
			return nil, prev, 0, false, nil
		}
	}
	if err != nil {
		return nil, prev, 0, false, err
	}
	msgs := make([]*message, 0, len(recs))
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
		m, err := g.newMessage(ctx, r)
		if err != nil {
			return nil, prev, 0, false, err
		}
		m.seq, m.prev = seq, prev
		msgs = append(msgs, m)
		prev = int64(seq)
	}
	return msgs, prev, skipped, len(recs) == n, nil
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

func (g *group) newMessage(ctx context.Context, r *eventlog.Record) (*message, error) {
	m := &message{id: r.ID, pos: r.Position, event: r}
	if !g.cfg.ResolveLinkTos || r.Type != eventlog.TypeLink {
		return m, nil
	}
	stream, n, ok := parseLink(r.Data)
	if !ok {
		return m, nil // not a link after all: delivered unresolved
	}
	m.link = r
	m.event = nil
	target, found, err := g.s.log.ReadEvent(ctx, stream, n)
	if err != nil {
		return nil, err
	}
	if found {
		m.event = &target
	}
	return m, nil
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
