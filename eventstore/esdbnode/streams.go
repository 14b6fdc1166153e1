package esdbnode

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
	"github.com/orderstore/orders/eventstore/esdbnode/internal/rpcerr"
)

// pageSize is how many records a read or subscription takes from the log at
// a time: enough to amortise creating a Pebble iterator and looking up the
// stream's head and metadata over many events (about 0.5 MB of records for
// typical events).
const pageSize = 1024

// streamsService implements event_store.client.streams.Streams over the log.
type streamsService struct {
	streams.UnimplementedStreamsServer
	log    *eventlog.Log
	logger *slog.Logger
	base   context.Context // cancelled when the server closes
	// observeAppend, if set, gets the log's time for each successful append.
	observeAppend func(time.Duration)
}

var _ streams.StreamsServer = (*streamsService)(nil)

// Append takes the options, then the proposed events (rejecting the call as
// soon as their data exceeds MaxAppendSize), and appends them atomically.
func (h *streamsService) Append(ss streams.Streams_AppendServer) error {
	const method = "Streams.Append"
	ctx := ss.Context()
	first, err := ss.Recv()
	if errors.Is(err, io.EOF) {
		return streamError(ss, h.logger, method, invalidf("the first append message must carry the options"))
	}
	if err != nil {
		return recvError(ctx, err)
	}
	target, err := appendOptions(first)
	if err != nil {
		return streamError(ss, h.logger, method, err)
	}
	var (
		events []eventlog.Proposed
		size   int
	)
	for {
		msg, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return recvError(ctx, err)
		}
		ev, err := proposedEvent(msg)
		if err != nil {
			return streamError(ss, h.logger, method, err)
		}
		size += len(ev.Data)
		if size > MaxAppendSize {
			return streamError(ss, h.logger, method, ErrAppendTooLarge)
		}
		events = append(events, ev)
	}
	start := time.Now()
	res, err := h.log.Append(ctx, target.stream, target.expected, events)
	if err == nil && h.observeAppend != nil {
		h.observeAppend(time.Since(start))
	}
	var wev *eventlog.WrongExpectedVersionError
	if errors.As(err, &wev) {
		return ss.SendAndClose(wrongExpectedVersionResp(target.expected, wev.Current))
	}
	if err != nil {
		return streamError(ss, h.logger, method, err)
	}
	return ss.SendAndClose(appendSuccessResp(res))
}

// recvError is the result of a failed Recv: the context's error if the call
// is over, else the transport's error as is.
func recvError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		st, _, _ := rpcerr.Status(ctx.Err())
		return st.Err()
	}
	return err
}

// Delete soft-deletes a stream.
func (h *streamsService) Delete(ctx context.Context, req *streams.DeleteReq) (*streams.DeleteResp, error) {
	const method = "Streams.Delete"
	target, err := deleteTarget(req)
	if err != nil {
		return nil, unaryError(ctx, h.logger, method, err)
	}
	pos, err := h.log.Delete(ctx, target.stream, target.expected)
	if err != nil {
		return nil, unaryError(ctx, h.logger, method, err)
	}
	if pos == 0 {
		return &streams.DeleteResp{PositionOption: &streams.DeleteResp_NoPosition{NoPosition: &shared.Empty{}}}, nil
	}
	return &streams.DeleteResp{PositionOption: &streams.DeleteResp_Position_{
		Position: &streams.DeleteResp_Position{CommitPosition: pos, PreparePosition: pos},
	}}, nil
}

// Tombstone hard-deletes a stream.
func (h *streamsService) Tombstone(ctx context.Context, req *streams.TombstoneReq) (*streams.TombstoneResp, error) {
	const method = "Streams.Tombstone"
	target, err := tombstoneTarget(req)
	if err != nil {
		return nil, unaryError(ctx, h.logger, method, err)
	}
	pos, err := h.log.Tombstone(ctx, target.stream, target.expected)
	if err != nil {
		return nil, unaryError(ctx, h.logger, method, err)
	}
	if pos == 0 {
		return &streams.TombstoneResp{PositionOption: &streams.TombstoneResp_NoPosition{NoPosition: &shared.Empty{}}}, nil
	}
	return &streams.TombstoneResp{PositionOption: &streams.TombstoneResp_Position_{
		Position: &streams.TombstoneResp_Position{CommitPosition: pos, PreparePosition: pos},
	}}, nil
}

// Read serves plain reads (stream or $all, counted, either direction) and
// subscriptions.
func (h *streamsService) Read(req *streams.ReadReq, ss streams.Streams_ReadServer) error {
	const method = "Streams.Read"
	plan, err := parseReadRequest(req)
	if err != nil {
		return streamError(ss, h.logger, method, err)
	}
	switch {
	case plan.subscription:
		err = h.subscribe(ss, plan)
	case plan.all:
		err = h.readAll(ss.Context(), ss, plan)
	default:
		err = h.readStream(ss.Context(), ss, plan)
	}
	if err != nil {
		return streamError(ss, h.logger, method, err)
	}
	return nil
}

// sender is what reads and subscriptions write to: a *streams.ReadResp, or
// a *rawResp (an event message encoded by respEncoder, which the server's
// rawCodec passes through).
type sender interface {
	SendMsg(m any) error
	Context() context.Context
}

var _ sender = (streams.Streams_ReadServer)(nil)

// send writes m (a *streams.ReadResp or a *rawResp); a failure means the
// client is gone, so the context's error is preferred.
func send(ss sender, m any) error {
	if err := ss.SendMsg(m); err != nil {
		if ctxErr := ss.Context().Err(); ctxErr != nil {
			return ctxErr
		}
		return err
	}
	return nil
}

// resolve picks what goes on the wire for rec, resolving a link when asked
// (protocol 2.5): resolved → event = target, link = rec; unresolvable →
// event absent, link = rec; not a link (or malformed data) → event = rec.
// The target, if any, is stored in *target.
func (h *streamsService) resolve(ctx context.Context, rec *eventlog.Record, resolveLinks bool, target *eventlog.Record) (event, link *eventlog.Record, err error) {
	if resolveLinks && rec.Type == eventlog.TypeLink {
		if stream, n, ok := parseLink(rec.Data); ok {
			if n >= 0 && stream != "" {
				t, found, err := h.log.ReadEvent(ctx, stream, uint64(n))
				var sd *eventlog.StreamDeletedError
				switch {
				case errors.Is(err, eventlog.ErrStreamNotFound), errors.As(err, &sd):
				case err != nil:
					return nil, nil, err
				case found:
					*target = t
					return target, rec, nil
				}
			}
			return nil, rec, nil
		}
	}
	return rec, nil, nil
}

// sendRecord sends rec as a ReadResp event, encoded by enc.
func (h *streamsService) sendRecord(ctx context.Context, ss sender, enc *respEncoder, rec *eventlog.Record, plan readPlan) error {
	var target eventlog.Record
	ev, link, err := h.resolve(ctx, rec, plan.resolveLinks, &target)
	if err != nil {
		return err
	}
	return send(ss, enc.event(ev, link, rec.Position, plan.stringIDs))
}

// readStream is a plain stream read (protocol 3.3): events, or one
// stream_not_found message for an absent or soft-deleted stream.
func (h *streamsService) readStream(ctx context.Context, ss sender, plan readPlan) error {
	var enc respEncoder
	dir, from := eventlog.Forwards, uint64(0)
	if plan.backwards {
		dir = eventlog.Backwards
	}
	switch {
	case plan.from == fromPoint:
		from = plan.point
	case plan.from == fromEnd && !plan.backwards:
		from = ^uint64(0) // nothing, but still "not found" for an absent stream
	case plan.from == fromEnd:
		from = ^uint64(0) // past the end: the last event
	case plan.backwards: // from start, backwards: at most event 0
		from = 0
	}
	remaining := plan.count
	first := true
	for remaining > 0 {
		limit := min(remaining, pageSize)
		recs, err := h.log.ReadStream(ctx, plan.stream, dir, from, int(limit))
		if errors.Is(err, eventlog.ErrStreamNotFound) {
			if first {
				return send(ss, streamNotFoundResp(plan.stream))
			}
			return nil
		}
		if err != nil {
			return err
		}
		first = false
		for i := range recs {
			if err := h.sendRecord(ctx, ss, &enc, &recs[i], plan); err != nil {
				return err
			}
		}
		remaining -= uint64(len(recs))
		if uint64(len(recs)) < limit {
			return nil
		}
		last := recs[len(recs)-1].Revision
		if plan.backwards {
			if last == 0 {
				return nil
			}
			from = last - 1
		} else {
			if last >= eventlog.TombstoneRevision {
				return nil
			}
			from = last + 1
		}
	}
	return nil
}

// readAll is a plain $all read (protocol 3.3): forwards from a position
// inclusive, backwards strictly before it; DefaultAllFilter always applies,
// a filter if given.
func (h *streamsService) readAll(ctx context.Context, ss sender, plan readPlan) error {
	var enc respEncoder
	dir, from := eventlog.Forwards, uint64(0)
	switch {
	case !plan.backwards && plan.from == fromEnd, plan.backwards && plan.from == fromStart:
		return nil
	case plan.backwards:
		dir = eventlog.Backwards
		from = ^uint64(0)
		if plan.from == fromPoint {
			from = plan.point
		}
	case plan.from == fromPoint:
		from = plan.point
	}
	remaining := plan.count
	for remaining > 0 {
		limit := pageSize
		if plan.filter == nil && remaining < pageSize {
			// Without a filter nearly every record is sent (not those of
			// system streams, and then the next page follows): do not
			// read past what the client asked for.
			limit = int(remaining)
		}
		recs, err := h.log.ReadAll(ctx, dir, from, limit)
		if err != nil {
			return err
		}
		for i := range recs {
			rec := &recs[i]
			if plan.backwards {
				from = rec.Position
			} else {
				from = rec.Position + 1
			}
			if !inDefaultAllFilter(rec.Stream) || (plan.filter != nil && !plan.filter.match(rec)) {
				continue
			}
			if err := h.sendRecord(ctx, ss, &enc, rec, plan); err != nil {
				return err
			}
			remaining--
			if remaining == 0 {
				return nil
			}
		}
		if len(recs) < limit || (plan.backwards && from <= 1) {
			return nil
		}
	}
	return nil
}
