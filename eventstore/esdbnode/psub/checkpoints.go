// Checkpoints. Messages of the source are finished in any order; the
// checkpoint is the sequence number just before the oldest unfinished one (or
// the last one scanned when none is unfinished), never ahead of it, so a
// group resumes after its checkpoint with nothing skipped. It is written as a
// "$SubscriptionCheckpoint" event to the group's checkpoint stream after
// checkpoint_after (on a tick, with at least min count finished), at max
// count finished, and once more when the group stops for good.

package psub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

func (g *group) loadCheckpoint(ctx context.Context) (int64, error) {
	recs, err := g.s.log.ReadStream(ctx, g.ckStream, eventlog.Backwards, math.MaxUint64, 1)
	var del *eventlog.StreamDeletedError
	switch {
	case errors.Is(err, eventlog.ErrStreamNotFound), errors.As(err, &del):
		return -1, nil
	case err != nil:
		return -1, fmt.Errorf("psub: read checkpoint of %s: %w", g.key, err)
	case len(recs) == 0:
		return -1, nil
	}
	var s string
	if err := json.Unmarshal(recs[0].Data, &s); err != nil {
		return -1, fmt.Errorf("psub: checkpoint of %s: %w", g.key, err)
	}
	v, err := parseSeq(s)
	if err != nil {
		return -1, fmt.Errorf("psub: checkpoint of %s: %w", g.key, err)
	}
	return v, nil
}

func (g *group) finishLocked(m *message) {
	m.done = true
	m.client = nil
	g.total++
	g.since++
	if m.replay != nil {
		m.replay.pending--
		if m.replay.pending == 0 {
			close(m.replay.done)
		}
		return
	}
	g.processed++
	g.trimLocked()
}

func (g *group) trimLocked() {
	i := 0
	for i < len(g.order) && g.order[i].done {
		g.order[i] = nil
		i++
	}
	if i > 0 {
		g.order = g.order[i:]
	}
}

// candidateLocked is the checkpoint the group may write: the sequence number
// before the oldest unfinished message, or the last one scanned.
func (g *group) candidateLocked() int64 {
	g.trimLocked()
	if len(g.order) > 0 {
		return g.order[0].prev
	}
	return g.lastScanned
}

// checkpoint writes a checkpoint when the policy says so (force: whenever the
// candidate moved).
func (g *group) checkpoint(ctx context.Context, onTick, force bool) {
	g.mu.Lock()
	cand := g.candidateLocked()
	diff := g.processed
	now := g.s.now()
	after := time.Duration(g.cfg.CheckPointAfter) * time.Millisecond
	timeOK := g.cfg.CheckPointAfter > 0 && now.Sub(g.lastCkTime) >= after
	countMax := diff >= int64(g.cfg.MaxCheckPointCount)
	write := cand > g.lastCk && (force || ((timeOK || countMax) && ((diff >= int64(g.cfg.MinCheckPointCount) && onTick) || countMax)))
	g.mu.Unlock()
	if !write || cand < 0 {
		return
	}
	if err := g.writeCheckpoint(ctx, cand); err != nil {
		g.s.logger().Warn("persistent subscription: checkpoint failed", "group", g.key, "err", err)
		return
	}
	g.mu.Lock()
	g.lastCk = cand
	g.processed -= diff
	g.lastCkTime = now
	g.mu.Unlock()
}

// writeCheckpoint appends cand to the group's checkpoint stream. The first
// time, it first gives the stream its $maxCount of 2, as EventStoreDB
// publishes the metadata before the first checkpoint: a checkpoint stream
// that has a checkpoint always has its metadata.
func (g *group) writeCheckpoint(ctx context.Context, cand int64) error {
	if !g.ckMetaDone {
		if err := g.s.ensureMaxCount(ctx, g.ckStream); err != nil {
			return err
		}
		g.ckMetaDone = true
	}
	data, _ := json.Marshal(formatSeq(g.cfg.isAll(), cand))
	_, err := g.s.log.Append(ctx, g.ckStream, eventlog.Expected{Kind: eventlog.ExpectAny}, []eventlog.Proposed{{
		ID: g.s.newID(), Type: checkpointType, IsJSON: true, Data: data,
	}})
	return err
}
