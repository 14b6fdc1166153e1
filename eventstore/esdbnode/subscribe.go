package esdbnode

import (
	"context"
	"errors"
	"math"

	"github.com/google/uuid"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

// subscribe serves a catch-up subscription (protocol 3.4). The starting
// point is fixed before the confirmation is sent, so anything committed after
// the client sees the confirmation is delivered. Then it reads after the last
// delivered revision/position until the log has nothing more, says caught_up
// once, and waits for the log's head to move past the head it read up to:
// no gap (the head is taken before each read) and no duplicate (reads start
// after the last delivered record), by construction. It ends with the
// client's context, or with errShuttingDown when the server closes.
func (h *streamsService) subscribe(ss sender, plan readPlan) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	stop := context.AfterFunc(h.base, cancel)
	defer stop()

	var (
		enc respEncoder
		err error
	)
	if plan.all {
		err = h.subscribeAll(ctx, ss, &enc, plan)
	} else {
		err = h.subscribeStream(ctx, ss, &enc, plan)
	}
	if err != nil && h.base.Err() != nil && ss.Context().Err() == nil {
		return errShuttingDown
	}
	return err
}

func (h *streamsService) subscribeStream(ctx context.Context, ss sender, enc *respEncoder, plan readPlan) error {
	// Everything at or below scanFrom is known not to be the stream's
	// tombstone (used to find the tombstone record to deliver).
	scanFrom := h.log.Head()
	st, err := h.log.Stream(ctx, plan.stream)
	if err != nil {
		return err
	}
	var next uint64 // first revision still to deliver
	switch plan.from {
	case fromEnd:
		if st.LastRevision >= 0 {
			next = uint64(st.LastRevision) + 1
		}
	case fromPoint:
		next = min(plan.point, eventlog.TombstoneRevision-1) + 1
	}
	if err := send(ss, confirmationResp(uuid.NewString())); err != nil {
		return err
	}
	if st.Tombstoned {
		return &eventlog.StreamDeletedError{Stream: plan.stream}
	}
	caughtUp := false
	for {
		head := h.log.Head()
		for {
			recs, err := h.log.ReadStream(ctx, plan.stream, eventlog.Forwards, next, pageSize)
			var sd *eventlog.StreamDeletedError
			if errors.As(err, &sd) {
				if serr := h.sendTombstone(ctx, ss, enc, plan, scanFrom); serr != nil {
					return serr
				}
				return err // stream-deleted, after its tombstone event
			}
			if errors.Is(err, eventlog.ErrStreamNotFound) {
				break // absent or soft-deleted: nothing to deliver yet
			}
			if err != nil {
				return err
			}
			for i := range recs {
				if recs[i].Revision < next {
					continue
				}
				if err := h.sendRecord(ctx, ss, enc, &recs[i], plan); err != nil {
					return err
				}
				next = recs[i].Revision + 1
			}
			if len(recs) < pageSize {
				break
			}
		}
		scanFrom = head
		if !caughtUp {
			if err := send(ss, caughtUpResp()); err != nil {
				return err
			}
			caughtUp = true
		}
		if err := h.log.Wait(ctx, head); err != nil {
			return err
		}
	}
}

// sendTombstone delivers the $streamDeleted record of plan.stream, which was
// written after position after.
func (h *streamsService) sendTombstone(ctx context.Context, ss sender, enc *respEncoder, plan readPlan, after uint64) error {
	end := h.log.Head()
	for after < end {
		recs, err := h.log.ReadAll(ctx, eventlog.Forwards, after+1, pageSize)
		if err != nil {
			return err
		}
		for i := range recs {
			rec := &recs[i]
			if rec.Stream == plan.stream && rec.Type == eventlog.TypeStreamDeleted {
				return h.sendRecord(ctx, ss, enc, rec, plan)
			}
			after = rec.Position
		}
		if len(recs) < pageSize {
			break
		}
	}
	return nil // not found: end with the error alone
}

func (h *streamsService) subscribeAll(ctx context.Context, ss sender, enc *respEncoder, plan readPlan) error {
	var after uint64 // last position considered; deliver only what is beyond it
	switch plan.from {
	case fromEnd:
		after = h.log.Head()
	case fromPoint:
		after = plan.point
	}
	if err := send(ss, confirmationResp(uuid.NewString())); err != nil {
		return err
	}
	f := plan.filter
	var (
		scanned    uint64 // records considered (for filter checkpoints)
		lastCk     uint64
		sentCk     bool
		checkpoint = func(pos uint64) error {
			if sentCk && pos <= lastCk {
				return nil
			}
			lastCk, sentCk = pos, true
			return send(ss, checkpointResp(pos))
		}
	)
	caughtUp := false
	for {
		head := h.log.Head()
		for after < math.MaxInt64 { // positions never exceed MaxInt64
			recs, err := h.log.ReadAll(ctx, eventlog.Forwards, after+1, pageSize)
			if err != nil {
				return err
			}
			for i := range recs {
				rec := &recs[i]
				after = rec.Position
				scanned++
				if inDefaultAllFilter(rec.Stream) && (f == nil || f.match(rec)) {
					if err := h.sendRecord(ctx, ss, enc, rec, plan); err != nil {
						return err
					}
				}
				if f != nil && scanned%f.interval == 0 {
					if err := checkpoint(after); err != nil {
						return err
					}
				}
			}
			if len(recs) < pageSize {
				break
			}
		}
		if !caughtUp {
			if f != nil {
				if err := checkpoint(after); err != nil {
					return err
				}
			}
			if err := send(ss, caughtUpResp()); err != nil {
				return err
			}
			caughtUp = true
		}
		if err := h.log.Wait(ctx, head); err != nil {
			return err
		}
	}
}
