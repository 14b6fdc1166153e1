package psub

import (
	"context"
	"io"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unaryErr converts an engine error for a unary call, setting the trailers.
func unaryErr(ctx context.Context, err error) error {
	st, md := toStatus(err)
	if md != nil {
		_ = grpc.SetTrailer(ctx, md)
	}
	return st
}

func createStart(o *persistent.CreateReq_Options) (string, startSpec, *filterConfig, error) {
	switch so := o.GetStreamOption().(type) {
	case *persistent.CreateReq_Options_Stream:
		name := streamName(so.Stream.GetStreamIdentifier())
		switch r := so.Stream.GetRevisionOption().(type) {
		case *persistent.CreateReq_StreamOptions_Start:
			return name, startSpec{kind: 's'}, nil, nil
		case *persistent.CreateReq_StreamOptions_End:
			return name, startSpec{kind: 'e'}, nil, nil
		case *persistent.CreateReq_StreamOptions_Revision:
			return name, startSpec{kind: 'p', pos: r.Revision}, nil, nil
		}
		return name, startSpec{kind: 'e'}, nil, nil
	case *persistent.CreateReq_Options_All:
		fc := filterFromCreate(so.All.GetFilter())
		switch p := so.All.GetAllOption().(type) {
		case *persistent.CreateReq_AllOptions_Start:
			return allStream, startSpec{kind: 's'}, fc, nil
		case *persistent.CreateReq_AllOptions_Position:
			return allStream, startSpec{kind: 'p', pos: p.Position.GetCommitPosition(), prep: p.Position.GetPreparePosition()}, fc, nil
		}
		return allStream, startSpec{kind: 'e'}, fc, nil
	default:
		// Deprecated shape: stream_identifier + settings.revision.
		name := streamName(o.GetStreamIdentifier())
		rev := o.GetSettings().GetRevision()
		switch rev {
		case 0:
			return name, startSpec{kind: 's'}, nil, nil
		case ^uint64(0):
			return name, startSpec{kind: 'e'}, nil, nil
		}
		return name, startSpec{kind: 'p', pos: rev}, nil, nil
	}
}

// Create creates a group and starts it.
func (s *Service) Create(ctx context.Context, req *persistent.CreateReq) (*persistent.CreateResp, error) {
	o := req.GetOptions()
	stream, sp, fc, err := createStart(o)
	if err != nil {
		return nil, unaryErr(ctx, err)
	}
	e := configEntry{Stream: stream, Group: o.GetGroupName(), Filter: fc}
	if _, isStream := o.GetStreamOption().(*persistent.CreateReq_Options_Stream); (isStream || o.GetStreamOption() == nil) && stream == allStream {
		return nil, unaryErr(ctx, newGroupError(ErrInvalid, stream, e.Group, "use the $all option for $all groups"))
	}
	createSettings(o.GetSettings()).apply(&e)
	if err := s.create(ctx, e, sp); err != nil {
		return nil, unaryErr(ctx, err)
	}
	return &persistent.CreateResp{}, nil
}

// Update replaces a group's settings (and start, if given), dropping its
// consumers; the checkpoint and parked messages are kept.
func (s *Service) Update(ctx context.Context, req *persistent.UpdateReq) (*persistent.UpdateResp, error) {
	o := req.GetOptions()
	var stream string
	var sp *startSpec
	switch so := o.GetStreamOption().(type) {
	case *persistent.UpdateReq_Options_Stream:
		stream = streamName(so.Stream.GetStreamIdentifier())
		switch r := so.Stream.GetRevisionOption().(type) {
		case *persistent.UpdateReq_StreamOptions_Start:
			sp = &startSpec{kind: 's'}
		case *persistent.UpdateReq_StreamOptions_End:
			sp = &startSpec{kind: 'e'}
		case *persistent.UpdateReq_StreamOptions_Revision:
			sp = &startSpec{kind: 'p', pos: r.Revision}
		}
	case *persistent.UpdateReq_Options_All:
		stream = allStream
		switch p := so.All.GetAllOption().(type) {
		case *persistent.UpdateReq_AllOptions_Start:
			sp = &startSpec{kind: 's'}
		case *persistent.UpdateReq_AllOptions_End:
			sp = &startSpec{kind: 'e'}
		case *persistent.UpdateReq_AllOptions_Position:
			sp = &startSpec{kind: 'p', pos: p.Position.GetCommitPosition(), prep: p.Position.GetPreparePosition()}
		}
	default:
		stream = streamName(o.GetStreamIdentifier())
	}
	if err := s.update(ctx, stream, o.GetGroupName(), updateSettings(o.GetSettings()), sp); err != nil {
		return nil, unaryErr(ctx, err)
	}
	return &persistent.UpdateResp{}, nil
}

// Delete removes a group, drops its consumers and soft-deletes its
// checkpoint and parked streams.
func (s *Service) Delete(ctx context.Context, req *persistent.DeleteReq) (*persistent.DeleteResp, error) {
	o := req.GetOptions()
	stream := allStream
	if id, ok := o.GetStreamOption().(*persistent.DeleteReq_Options_StreamIdentifier); ok {
		stream = streamName(id.StreamIdentifier)
	}
	if err := s.delete(ctx, stream, o.GetGroupName()); err != nil {
		return nil, unaryErr(ctx, err)
	}
	return &persistent.DeleteResp{}, nil
}

// GetInfo reports one group.
func (s *Service) GetInfo(ctx context.Context, req *persistent.GetInfoReq) (*persistent.GetInfoResp, error) {
	o := req.GetOptions()
	stream := allStream
	if id, ok := o.GetStreamOption().(*persistent.GetInfoReq_Options_StreamIdentifier); ok {
		stream = streamName(id.StreamIdentifier)
	}
	g, err := s.lookup(stream, o.GetGroupName())
	if err != nil {
		return nil, unaryErr(ctx, err)
	}
	return &persistent.GetInfoResp{SubscriptionInfo: g.info(ctx)}, nil
}

// List reports every group, or those of one stream ($all included); a stream
// without groups is NotFound.
func (s *Service) List(ctx context.Context, req *persistent.ListReq) (*persistent.ListResp, error) {
	o := req.GetOptions()
	s.mu.Lock()
	err := s.readyLocked()
	s.mu.Unlock()
	if err != nil {
		return nil, unaryErr(ctx, newGroupError(err, "", "", ""))
	}
	var groups []*group
	switch lo := o.GetListOption().(type) {
	case *persistent.ListReq_Options_ListForStream:
		stream := allStream
		if id, ok := lo.ListForStream.GetStreamOption().(*persistent.ListReq_StreamOption_Stream); ok {
			stream = streamName(id.Stream)
		}
		groups = s.list(stream, false)
		if len(groups) == 0 {
			return nil, unaryErr(ctx, newGroupError(ErrNotFound, stream, "", ""))
		}
	default:
		groups = s.list("", true)
	}
	resp := &persistent.ListResp{}
	for _, g := range groups {
		resp.Subscriptions = append(resp.Subscriptions, g.info(ctx))
	}
	return resp, nil
}

// ReplayParked starts replaying a group's parked messages and returns at once.
func (s *Service) ReplayParked(ctx context.Context, req *persistent.ReplayParkedReq) (*persistent.ReplayParkedResp, error) {
	o := req.GetOptions()
	stream := allStream
	if id, ok := o.GetStreamOption().(*persistent.ReplayParkedReq_Options_StreamIdentifier); ok {
		stream = streamName(id.StreamIdentifier)
	}
	g, err := s.lookup(stream, o.GetGroupName())
	if err != nil {
		return nil, unaryErr(ctx, err)
	}
	stopAt := int64(-1)
	if v, ok := o.GetStopAtOption().(*persistent.ReplayParkedReq_Options_StopAt); ok {
		if v.StopAt < 0 {
			return nil, unaryErr(ctx, newGroupError(ErrInvalid, stream, o.GetGroupName(), "stop_at must not be negative"))
		}
		stopAt = v.StopAt
	}
	g.replayParked(stopAt)
	return &persistent.ReplayParkedResp{}, nil
}

// RestartSubsystem drops every consumer, reloads the groups from the config
// stream and resumes them from their checkpoints.
func (s *Service) RestartSubsystem(ctx context.Context, _ *shared.Empty) (*shared.Empty, error) {
	if err := s.restart(); err != nil {
		return nil, unaryErr(ctx, err)
	}
	return &shared.Empty{}, nil
}

func streamErr(stream grpc.ServerStream, err error) error {
	st, md := toStatus(err)
	if md != nil {
		stream.SetTrailer(md)
	}
	return st
}

func protoIDs(in []*shared.UUID) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(in))
	for _, u := range in {
		if id, ok := fromProtoUUID(u); ok {
			out = append(out, id)
		}
	}
	return out
}

// Read connects a consumer: confirmation first, then events; acks and nacks
// flow the other way until either side ends the call.
func (s *Service) Read(stream persistent.PersistentSubscriptions_ReadServer) error {
	ctx := stream.Context()
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "the first message must carry options")
	}
	name := allStream
	if id, ok := o.GetStreamOption().(*persistent.ReadReq_Options_StreamIdentifier); ok {
		name = streamName(id.StreamIdentifier)
	}
	g, err := s.lookup(name, o.GetGroupName())
	if err != nil {
		return streamErr(stream, err)
	}
	_, stringIDs := o.GetUuidOption().GetContent().(*persistent.ReadReq_Options_UUIDOption_String_)
	c, err := g.connect(int(o.GetBufferSize()), stringIDs)
	if err != nil {
		return streamErr(stream, err)
	}
	defer g.disconnect(c)
	if err := stream.Send(&persistent.ReadResp{Content: &persistent.ReadResp_SubscriptionConfirmation_{
		SubscriptionConfirmation: &persistent.ReadResp_SubscriptionConfirmation{SubscriptionId: g.key},
	}}); err != nil {
		return err
	}

	recvDone := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvDone <- err
				return
			}
			switch content := req.GetContent().(type) {
			case *persistent.ReadReq_Ack_:
				g.ack(c, protoIDs(content.Ack.GetIds()))
			case *persistent.ReadReq_Nack_:
				g.nack(c, protoIDs(content.Nack.GetIds()), content.Nack.GetAction(), content.Nack.GetReason())
			}
		}
	}()

	g.startDelivery()
	var (
		sent []queued
		msgs []*eventMsg
	)
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case err := <-recvDone:
			if err == io.EOF {
				return nil
			}
			return err
		case <-c.dropped:
			return streamErr(stream, c.dropErr)
		case <-c.wake:
			// Encode all, then send all: sent in a burst, the messages
			// leave in as few socket writes as the stub's pre-encoded ones.
			sent = g.takeQueue(c, sent)
			msgs = msgs[:0]
			for _, q := range sent {
				msgs = append(msgs, toReadResp(q, c.stringIDs))
			}
			for i, m := range msgs {
				msgs[i] = nil
				if err := stream.SendMsg(m); err != nil {
					return err
				}
			}
		}
	}
}
