// Delivery. Buffered and retried messages go to the connected consumers with
// a free slot (at most buffer_size unacked each), by the group's strategy:
// RoundRobin, DispatchToSingle, Pinned or PinnedByCorrelation (a hash bucket
// of the stream, or of the correlation id, sticks to one consumer). An ack
// finishes a message (checkpoints.go). A consumer that goes away has its
// unacked messages re-queued with retry_count+1, without the park check.

package psub

import (
	"encoding/json"
	"hash/fnv"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
)

func (g *group) pinnedStrategy() bool {
	return g.cfg.NamedConsumerStrategy == strategyPinned || g.cfg.NamedConsumerStrategy == strategyPinnedByCorrelation
}

func (g *group) anyFree() bool {
	for _, c := range g.clients {
		if c.free() {
			return true
		}
	}
	return false
}

func (g *group) dispatchLocked() {
	if len(g.clients) == 0 {
		return
	}
	now := g.s.now()
	g.retry = g.pushQueue(g.retry, now)
	before := len(g.buffer)
	g.buffer = g.pushQueue(g.buffer, now)
	if len(g.buffer) < before && !g.live && g.historyRoomLocked() {
		signal(g.readerWake)
	}
}

// pushQueue sends what it can of q, in order, and returns the rest (in q's
// backing array). Once no client can take more it stops looking and keeps
// the rest as is (re-slicing past a sent prefix, else one copy), so a
// dispatch after each single ack costs what it sends, not the length of the
// buffer.
func (g *group) pushQueue(q []*message, now time.Time) []*message {
	pinned := g.pinnedStrategy()
	kept := q[:0]
	for i, m := range q {
		stop := !g.anyFree()
		if !stop {
			if _, busy := g.outstanding[m.id]; !busy {
				if c := g.pick(m); c != nil {
					g.sendLocked(c, m, now)
					continue
				}
				stop = !pinned
			}
		}
		if stop {
			switch len(kept) {
			case i: // nothing sent
				return q
			case 0: // a prefix was sent: drop it without moving the rest
				clear(q[:i])
				return q[i:]
			}
			kept = append(kept, q[i:]...)
			break
		}
		kept = append(kept, m)
	}
	clear(q[len(kept):])
	return kept
}

func (g *group) pick(m *message) *client {
	n := len(g.clients)
	switch g.cfg.NamedConsumerStrategy {
	case strategyDispatchToSingle:
		for _, c := range g.clients {
			if c.free() {
				return c
			}
		}
	case strategyPinned, strategyPinnedByCorrelation:
		b := g.bucket(m)
		c := g.pins[b]
		if c == nil {
			for _, cand := range g.clients {
				if c == nil || cand.pins < c.pins {
					c = cand
				}
			}
			g.pins[b] = c
			c.pins++
		}
		if c.free() {
			return c
		}
	default: // RoundRobin
		for k := 0; k < n; k++ {
			c := g.clients[(g.rr+k)%n]
			if c.free() {
				g.rr = (g.rr + k + 1) % n
				return c
			}
		}
	}
	return nil
}

// bucket hashes the event's stream (Pinned) or its $correlationId
// (PinnedByCorrelation, falling back to the stream).
func (g *group) bucket(m *message) uint32 {
	r := m.event
	if r == nil {
		r = m.link
	}
	key := r.Stream
	if g.cfg.NamedConsumerStrategy == strategyPinnedByCorrelation && m.event != nil && len(m.event.Metadata) > 0 {
		var md struct {
			CorrelationID string `json:"$correlationId"`
		}
		if json.Unmarshal(m.event.Metadata, &md) == nil && md.CorrelationID != "" {
			key = md.CorrelationID
		}
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32() % pinBuckets
}

func (g *group) sendLocked(c *client, m *message, now time.Time) {
	m.client = c
	m.sentAt = now
	m.deadline = now.Add(time.Duration(g.cfg.MessageTimeout) * time.Millisecond)
	g.outstanding[m.id] = m
	c.inflight++
	c.queue = append(c.queue, queued{m: m, retry: int32(m.retry)})
	signal(c.wake)
}

func (g *group) connect(slots int, stringIDs bool) (*client, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return nil, newGroupError(ErrDropped, g.cfg.Stream, g.cfg.Group, "")
	}
	if g.faulted != nil {
		return nil, newGroupError(ErrDropped, g.cfg.Stream, g.cfg.Group, g.faulted.Error())
	}
	if g.cfg.MaxSubscriberCount > 0 && len(g.clients) >= int(g.cfg.MaxSubscriberCount) {
		return nil, newGroupError(ErrMaxSubscribers, g.cfg.Stream, g.cfg.Group, "")
	}
	if slots <= 0 {
		slots = defaultClientSlots
	}
	g.nextClient++
	c := &client{
		id: g.nextClient, slots: slots, stringIDs: stringIDs,
		wake: make(chan struct{}, 1), dropped: make(chan struct{}),
		measuredAt: g.s.now(),
	}
	g.clients = append(g.clients, c)
	return c, nil
}

// takeQueue hands the sender the messages queued for c, giving c spent (a
// queue already sent) to fill next. The sender encodes them without the
// group's lock: the message fields it reads do not change once the message
// is read from the source, and the retry count is the one it was sent with.
func (g *group) takeQueue(c *client, spent []queued) []queued {
	clear(spent)
	g.mu.Lock()
	defer g.mu.Unlock()
	q := c.queue
	c.queue = spent[:0]
	return q
}

// startDelivery lets dispatch reach c (after its confirmation was sent).
func (g *group) startDelivery() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dispatchLocked()
}

func (g *group) dropLocked(c *client, err error) {
	if c.dropErr == nil && !c.gone {
		c.dropErr = err
		close(c.dropped)
	}
}

// disconnect removes c and puts its unacknowledged messages back for retry
// (retry count + 1, no park check), in source order.
func (g *group) disconnect(c *client) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.gone {
		return
	}
	c.gone = true
	g.clients = slices.DeleteFunc(g.clients, func(x *client) bool { return x == c })
	for b, pc := range g.pins {
		if pc == c {
			delete(g.pins, b)
		}
	}
	var back []*message
	for id, m := range g.outstanding {
		if m.client == c {
			delete(g.outstanding, id)
			back = append(back, m)
		}
	}
	sort.Slice(back, func(i, j int) bool { return lessMsg(back[i], back[j]) })
	for _, m := range back {
		g.retryLocked(m, false)
	}
	c.queue = nil
	g.dispatchLocked()
}

func lessMsg(a, b *message) bool {
	if (a.replay != nil) != (b.replay != nil) {
		return a.replay == nil
	}
	return a.seq < b.seq
}

func (g *group) ack(c *client, ids []uuid.UUID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.s.now()
	for _, id := range ids {
		m := g.outstanding[id]
		if m == nil || m.client != c {
			continue
		}
		delete(g.outstanding, id)
		c.inflight--
		c.total++
		c.since++
		if g.cfg.ExtraStatistics {
			if len(c.latencies) >= 256 {
				c.latencies = c.latencies[1:]
			}
			c.latencies = append(c.latencies, now.Sub(m.sentAt))
		}
		g.finishLocked(m)
	}
	g.dispatchLocked()
	if g.processed >= int64(g.cfg.MaxCheckPointCount) {
		signal(g.workWake)
	}
}
