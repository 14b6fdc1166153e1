// Retries. Nack Retry or Unknown, and a message in flight past its
// message_timeout, put the message back in the retry queue (ordered, replayed
// parked messages after the source's) with retry_count+1, or park it once
// retry_count reached max_retry_count. Nack Park parks, Nack Skip finishes,
// Nack Stop is accepted and ignored (the messages time out), as on a real node.

package psub

import (
	"fmt"
	"slices"
	"sort"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/google/uuid"
)

func (g *group) nack(c *client, ids []uuid.UUID, action persistent.ReadReq_Nack_Action, reason string) {
	if action == persistent.ReadReq_Nack_Stop {
		// Accepted and ignored, as on a real node: the messages stay in
		// flight until they time out.
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		m := g.outstanding[id]
		if m == nil || m.client != c {
			continue
		}
		delete(g.outstanding, id)
		c.inflight--
		switch action {
		case persistent.ReadReq_Nack_Park:
			g.parkLocked(m, "Client explicitly NAK'ed message.\n"+reason)
		case persistent.ReadReq_Nack_Skip:
			g.finishLocked(m)
		default: // Retry, Unknown
			g.retryLocked(m, true)
		}
	}
	g.dispatchLocked()
	if g.processed >= int64(g.cfg.MaxCheckPointCount) {
		signal(g.workWake)
	}
}

func (g *group) retryLocked(m *message, parkCheck bool) {
	m.client = nil
	if parkCheck && m.retry >= int(g.cfg.MaxRetryCount) {
		g.parkLocked(m, fmt.Sprintf("Reached retry count of %d", g.cfg.MaxRetryCount))
		return
	}
	m.retry++
	i := sort.Search(len(g.retry), func(i int) bool { return lessMsg(m, g.retry[i]) })
	g.retry = slices.Insert(g.retry, i, m)
}

// expire retries (or parks) the messages in flight past their timeout.
func (g *group) expire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.s.now()
	var late []*message
	for id, m := range g.outstanding {
		if now.After(m.deadline) {
			delete(g.outstanding, id)
			m.client.inflight--
			late = append(late, m)
		}
	}
	sort.Slice(late, func(i, j int) bool { return lessMsg(late[i], late[j]) })
	for _, m := range late {
		g.retryLocked(m, true)
	}
	g.dispatchLocked()
}
