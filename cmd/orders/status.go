package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderstore/orders/cmd/orders/statusweb"
	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/subscribers"
	"github.com/orderstore/orders/subscribers/notify"
)

// statusSource adapts serve's subscribers (the projections runner and the e-mail sender) to
// what the status page, /healthz and /metrics read.
type statusSource struct {
	runner *projections.Runner
	sender *notify.Sender // nil: no sender
	group  string         // the sender's group, on $all
	dial   subscribers.Dial

	mu     sync.Mutex
	client *esdb.Client // for the sender group's info; replaced after any error
}

var _ statusweb.Source = (*statusSource)(nil)

// Subscribers reports every projection (lag in order events not yet applied, from the
// read-model store) and the sender (lag = messages its group holds that the sender has not
// finished: read, live and retry buffers plus in flight, from the group's info on the node).
func (s *statusSource) Subscribers(ctx context.Context) ([]statusweb.SubscriberStatus, error) {
	ps, err := s.runner.Status(ctx)
	if ps == nil && err != nil {
		return nil, err
	}
	out := make([]statusweb.SubscriberStatus, 0, len(ps)+1)
	var head uint64
	for _, p := range ps {
		head = max(head, p.HeadPosition)
		out = append(out, statusweb.SubscriberStatus{
			Name:          p.Name,
			Kind:          statusweb.KindProjection,
			Position:      p.Position,
			Head:          p.HeadPosition,
			Lag:           uint64(max(p.Lag, 0)),
			LastHandledAt: p.LastAppliedAt,
			Handled:       p.Handled,
			Retried:       p.Retried,
			Parked:        p.Parked,
			Connected:     p.Connected,
			LastError:     p.LastError,
			Unknown:       p.Unknown,
		})
	}
	if s.sender == nil {
		return out, nil
	}
	st := s.sender.Stats()
	sub := statusweb.SubscriberStatus{
		Name:          s.group,
		Kind:          statusweb.KindSender,
		Position:      st.Consumer.LastPosition,
		Head:          head,
		LastHandledAt: st.Consumer.LastHandledAt,
		Handled:       st.Consumer.Handled,
		Retried:       st.Consumer.Retried,
		Parked:        st.Consumer.Parked,
		Connected:     st.Consumer.Connected,
		LastError:     st.Consumer.LastError,
		Unknown:       st.Unknown,
	}
	info, err := s.groupInfo(ctx)
	if err != nil {
		sub.LastError = fmt.Sprintf("group info: %v", err)
	} else if info.Stats != nil {
		pending := info.Stats.ReadBufferCount + info.Stats.LiveBufferCount +
			info.Stats.RetryBufferCount + info.Stats.TotalInFlightMessages
		sub.Lag = uint64(max(pending, 0))
		sub.Parked = uint64(max(info.Stats.ParkedMessagesCount, 0))
	}
	return append(out, sub), nil
}

// groupInfo asks the node for the sender group's figures, with a fresh client after any
// error (the official client can hang after a failed reconnect; see package subscribers).
func (s *statusSource) groupInfo(ctx context.Context) (*esdb.PersistentSubscriptionInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		c, err := s.dial()
		if err != nil {
			return nil, err
		}
		s.client = c
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := s.client.GetPersistentSubscriptionInfoToAll(ctx, s.group, esdb.GetPersistentSubscriptionOptions{})
	if err != nil {
		_ = s.client.Close()
		s.client = nil
		return nil, err
	}
	return info, nil
}

// Close releases the client.
func (s *statusSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client = nil
	return err
}
