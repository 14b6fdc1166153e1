// Parking. A parked message is appended as a "$>" link to the group's parked
// stream (data "<n>@<stream>", metadata {Added, Reason,
// SubscriptionEventNumber}); it counts as finished only once that link is
// durable. ReplayParked redelivers parked messages page by page through the
// retry queue with retry_count 0, acked by the link id, and truncates the
// parked stream ($tb) past a page once all its messages are finished, so a
// crash never loses a parked message.

package psub

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

func (g *group) parkLocked(m *message, reason string) {
	m.client = nil
	m.parkReason = reason
	g.parkQ = append(g.parkQ, m)
	signal(g.workWake)
}

type parkedMeta struct {
	Added                   string `json:"Added"`
	Reason                  string `json:"Reason"`
	SubscriptionEventNumber uint64 `json:"SubscriptionEventNumber"`
}

// flushParks appends the queued parked messages as links to the parked
// stream; a message is finished only once its link is durable.
func (g *group) flushParks(ctx context.Context) {
	g.mu.Lock()
	q := g.parkQ
	g.parkQ = nil
	g.mu.Unlock()
	if len(q) == 0 {
		return
	}
	now := g.s.now().UTC().Format(time.RFC3339Nano)
	events := make([]eventlog.Proposed, len(q))
	for i, m := range q {
		var data []byte
		num := m.seq
		if m.event != nil {
			data = fmt.Appendf(nil, "%d@%s", m.event.Revision, m.event.Stream)
			num = m.event.Revision
		} else {
			data = m.link.Data
		}
		md, _ := json.Marshal(parkedMeta{Added: now, Reason: m.parkReason, SubscriptionEventNumber: num})
		events[i] = eventlog.Proposed{ID: g.s.newID(), Type: eventlog.TypeLink, Data: data, Metadata: md}
	}
	_, err := g.s.log.Append(ctx, g.parkStream, eventlog.Expected{Kind: eventlog.ExpectAny}, events)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.s.logger().Warn("persistent subscription: park failed", "group", g.key, "err", err)
		g.parkQ = append(q, g.parkQ...)
		return
	}
	for _, m := range q {
		g.finishLocked(m)
	}
}

// replayParked starts replaying the parked messages with a parked-stream
// number below stopAt (all when stopAt < 0); a replay already running wins.
func (g *group) replayParked(stopAt int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.replaying || g.stopped {
		return
	}
	g.replaying = true
	g.wg.Add(1)
	go g.replayLoop(stopAt)
}

// replayLoop redelivers parked messages page by page through the retry queue
// (so through the normal in-flight limits), and truncates the parked stream
// ($tb) past each page once every message of it is finished (acked, skipped
// or parked again), so a crash never loses a parked message.
func (g *group) replayLoop(stopAt int64) {
	defer g.wg.Done()
	defer func() {
		g.mu.Lock()
		g.replaying = false
		g.mu.Unlock()
	}()
	ctx := g.ctx
	st, err := g.s.log.Stream(ctx, g.parkStream)
	if err != nil || st.LastRevision < 0 || st.SoftDeleted || st.Tombstoned {
		return
	}
	end := uint64(st.LastRevision) + 1
	if stopAt >= 0 && uint64(stopAt) < end {
		end = uint64(stopAt)
	}
	from := uint64(0)
	if tb := st.Metadata.TruncateBefore; tb != nil && *tb > 0 {
		from = uint64(*tb)
	}
	batch := uint64(g.cfg.ReadBatchSize)
	for from < end {
		recs, err := g.s.log.ReadStream(ctx, g.parkStream, eventlog.Forwards, from, int(min(batch, end-from)))
		if err != nil || len(recs) == 0 {
			return
		}
		page := &replayPage{done: make(chan struct{})}
		var msgs []*message
		for i := range recs {
			r := &recs[i]
			if r.Revision >= end {
				break
			}
			from = r.Revision + 1
			stream, n, ok := parseLink(r.Data)
			if !ok {
				continue
			}
			target, found, err := g.s.log.ReadEvent(ctx, stream, n)
			if err != nil {
				return
			}
			if !found {
				continue
			}
			msgs = append(msgs, &message{id: r.ID, seq: r.Revision, prev: -1, event: &target, link: r, pos: r.Position, replay: page})
		}
		if len(msgs) > 0 {
			g.mu.Lock()
			page.pending = len(msgs)
			g.retry = append(g.retry, msgs...)
			g.dispatchLocked()
			g.mu.Unlock()
			select {
			case <-page.done:
			case <-ctx.Done():
				return
			}
		}
		if err := g.s.writeTruncateBefore(ctx, g.parkStream, from); err != nil {
			return
		}
	}
}

func (g *group) parkedCount(ctx context.Context) int64 {
	st, err := g.s.log.Stream(ctx, g.parkStream)
	if err != nil || st.LastRevision < 0 || st.SoftDeleted || st.Tombstoned {
		return 0
	}
	tb := int64(0)
	if st.Metadata.TruncateBefore != nil {
		tb = *st.Metadata.TruncateBefore
	}
	return max(0, st.LastRevision-tb+1)
}
