package subscribers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/orderstore/orders/eventstore"
)

// Stats is a snapshot of what a Consumer did since it was made.
type Stats struct {
	Group         string // the group's key, "<stream>::<name>" or "$all::<name>"
	Connected     bool   // a subscription is confirmed and running
	Connects      uint64 // subscriptions confirmed by the server: 1 + reconnections
	Handled       uint64 // events acked after a successful handle
	Retried       uint64 // nacks with Retry
	Parked        uint64 // nacks with Park
	LastHandledAt time.Time
	LastPosition  uint64 // highest Position handled
	LastError     string // last handler or connection error, "" if none yet
}

// Consumer runs one subscriber on one persistent subscription group. Make it with New or
// NewBatch; Run it once at a time.
type Consumer struct {
	dial    Dial
	cfg     Config
	handle  BatchHandler // a Handler is wrapped to take one-event slices
	batched bool
	log     *slog.Logger
	running atomic.Bool

	mu    sync.Mutex
	stats Stats
}

// New makes a consumer calling h for every event. It validates and starts nothing.
func New(dial Dial, cfg Config, h Handler) (*Consumer, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	return newConsumer(dial, cfg, func(ctx context.Context, evs []Event) error { return h(ctx, evs[0]) }, false)
}

// NewBatch makes a consumer calling h with batches of events. It validates and starts nothing.
func NewBatch(dial Dial, cfg Config, h BatchHandler) (*Consumer, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	return newConsumer(dial, cfg, h, true)
}

func newConsumer(dial Dial, cfg Config, h BatchHandler, batched bool) (*Consumer, error) {
	if dial == nil {
		return nil, fmt.Errorf("%w: nil dial", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if !batched {
		cfg.MaxBatch = 1
	}
	c := &Consumer{
		dial:    dial,
		cfg:     cfg,
		handle:  h,
		batched: batched,
		log:     cfg.Logger.With("group", cfg.Group.Key()),
	}
	c.stats.Group = cfg.Group.Key()
	return c, nil
}

// Stats returns a snapshot of the consumer's counters. It is safe for concurrent use.
func (c *Consumer) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Run connects (creating the group if missing; AlreadyExists is fine), receives, handles,
// acks/nacks, reconnects with backoff after any connection or server error (node restart,
// network cut, group dropped by an update), and returns nil once ctx is cancelled and its
// goroutines have exited (unacked events are left for redelivery). It fails at once only
// with ErrRunning (another Run in progress) or ErrDial (Dial failed).
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)

	attempt := 0
	for {
		confirmed, err := c.connection(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.noteError(err)
		if errors.Is(err, ErrDial) {
			return err
		}
		if confirmed {
			attempt = 0
		}
		attempt++
		delay := c.cfg.Reconnect(attempt)
		c.log.Warn("subscription ended; reconnecting", "err", err, "attempt", attempt, "delay", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// connection runs one connection: a fresh client, the group ensured, one subscription until
// it drops or ctx is cancelled. confirmed reports whether the server confirmed the
// subscription. The client is used by this goroutine alone for the calls that can touch its
// connection state machine (create, subscribe), and closed on the way out.
func (c *Consumer) connection(ctx context.Context) (confirmed bool, err error) {
	client, err := c.dial()
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrDial, err)
	}
	defer func() { _ = client.Close() }()

	if err := c.ensureGroup(ctx, client); err != nil {
		return false, err
	}
	s, err := c.join(ctx, client)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	c.stats.Connected = true
	c.stats.Connects++
	c.mu.Unlock()
	c.log.Info("subscribed")
	defer func() {
		c.mu.Lock()
		c.stats.Connected = false
		c.mu.Unlock()
	}()
	return true, s.run(ctx)
}

// ensureGroup creates the group unless it exists.
func (c *Consumer) ensureGroup(ctx context.Context, client *esdb.Client) error {
	g := c.cfg.Group
	s := DefaultSettings(g.Stream, c.cfg.MaxAttempts)
	if g.Settings != nil {
		s = *g.Settings
	}
	settings := s.client()
	cctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	var err error
	if g.Stream == "" {
		opts := esdb.PersistentAllSubscriptionOptions{Settings: &settings, StartFrom: esdb.Start{}}
		if len(g.StreamPrefixes) > 0 {
			opts.Filter = &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: g.StreamPrefixes}
		}
		err = client.CreatePersistentSubscriptionToAll(cctx, g.Name, opts)
	} else {
		err = client.CreatePersistentSubscription(cctx, g.Stream, g.Name,
			esdb.PersistentStreamSubscriptionOptions{Settings: &settings, StartFrom: esdb.Start{}})
	}
	err = eventstore.TranslateGroupError(cctx, "create group "+g.Key(), err)
	switch {
	case err == nil:
		c.log.Info("created persistent subscription group")
		return nil
	case errors.Is(err, eventstore.ErrGroupExists):
		return nil
	}
	return fmt.Errorf("%w: %v", ErrConnection, err)
}

// join subscribes to the group. The subscription's context is not ctx: cancelling ctx must
// let the handler in progress ack before the stream goes; session.run cancels it instead.
// Until the server confirms, ctx and ConnectTimeout both abort the attempt.
func (c *Consumer) join(ctx context.Context, client *esdb.Client) (*session, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	timer := time.AfterFunc(c.cfg.ConnectTimeout, cancel)
	opts := esdb.SubscribeToPersistentSubscriptionOptions{BufferSize: uint32(c.cfg.BufferSize)}
	var sub *esdb.PersistentSubscription
	var err error
	if g := c.cfg.Group; g.Stream == "" {
		sub, err = client.SubscribeToPersistentSubscriptionToAll(sctx, g.Name, opts)
	} else {
		sub, err = client.SubscribeToPersistentSubscription(sctx, g.Stream, g.Name, opts)
	}
	timedOut := !timer.Stop()
	cancelled := !stop()
	if err == nil && (timedOut || cancelled) {
		_ = sub.Close()
		err = errors.New("no confirmation in time")
		if cancelled {
			err = ctx.Err()
		}
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: join group %s: %v", ErrConnection, c.cfg.Group.Key(), err)
	}
	return &session{
		c:       c,
		sub:     sub,
		ctx:     sctx,
		cancel:  cancel,
		events:  make(chan Event, c.cfg.BufferSize),
		dropped: make(chan struct{}),
	}, nil
}

// session is one confirmed subscription: a receiving goroutine feeding events, the worker
// (the Run goroutine) handling them in order of arrival, and a goroutine per delayed retry.
type session struct {
	c      *Consumer
	sub    *esdb.PersistentSubscription
	ctx    context.Context // the subscription's; done when the session ends
	cancel context.CancelFunc

	sendMu sync.Mutex // gRPC allows one sender at a time: Ack, Nack, Close

	events  chan Event
	held    *Event        // received, kept for the next batch (worker only)
	dropped chan struct{} // closed when the receiver stops; dropErr says why
	dropErr error
	retries sync.WaitGroup
}

// run handles events until ctx is cancelled or the subscription drops, then tears the
// session down and waits for its goroutines. It returns why the subscription ended, nil
// when ctx was cancelled.
func (s *session) run(ctx context.Context) error {
	var recv sync.WaitGroup
	recv.Go(s.receive)

	s.work(ctx)

	s.cancel() // stops delayed retries and the receiver; unblocks a Send stuck on flow control
	// Close (which half-closes the stream) only once the receiver has seen the cancellation:
	// a half-close can end the server's side first, and the client then reports that end
	// ("dropped: EOF") as a warning on every clean shutdown.
	recv.Wait()
	s.sendMu.Lock()
	_ = s.sub.Close() // the server re-queues what is unacked
	s.sendMu.Unlock()
	s.retries.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return s.dropErr
}

func (s *session) receive() {
	defer close(s.dropped)
	for {
		e := s.sub.Recv()
		switch {
		case e.SubscriptionDropped != nil:
			s.dropErr = fmt.Errorf("%w: subscription dropped: %v", ErrConnection, e.SubscriptionDropped.Error)
			return
		case e.EventAppeared != nil:
			select {
			case s.events <- fromAppeared(e.EventAppeared):
			case <-s.ctx.Done():
				s.dropErr = fmt.Errorf("%w: subscription closed", ErrConnection)
				return
			}
		}
	}
}

func (s *session) work(ctx context.Context) {
	for {
		var first Event
		if s.held != nil {
			first, s.held = *s.held, nil
		} else {
			select {
			case <-ctx.Done():
				return
			case <-s.dropped:
				return
			case first = <-s.events:
			}
		}
		select {
		case <-s.dropped:
			return // what is still buffered cannot be acked any more
		case <-ctx.Done():
			return
		default:
		}
		batch := s.gather(ctx, first)
		if batch == nil {
			return
		}
		s.process(ctx, batch)
	}
}

// gather adds to first what is already received, up to MaxBatch, waiting at most BatchWait
// for more. A redelivered event (retry count > 0, likely to fail again) goes in a batch of
// its own, so that it does not make fresh events fail with it again and again. gather
// returns nil when the session ends meanwhile (the events stay unacked).
func (s *session) gather(ctx context.Context, first Event) []Event {
	limit := s.c.cfg.MaxBatch
	batch := []Event{first}
	if limit == 1 || first.RetryCount > 0 {
		return batch
	}
	// add appends ev, or holds it for the next batch when it is a retry; false: batch done.
	add := func(ev Event) bool {
		if ev.RetryCount > 0 {
			s.held = &ev
			return false
		}
		batch = append(batch, ev)
		return len(batch) < limit
	}
	for {
		select {
		case ev := <-s.events:
			if !add(ev) {
				return batch
			}
			continue
		default:
		}
		break
	}
	if s.c.cfg.BatchWait < 0 {
		return batch
	}
	t := time.NewTimer(s.c.cfg.BatchWait)
	defer t.Stop()
	for {
		select {
		case ev := <-s.events:
			if !add(ev) {
				return batch
			}
		case <-t.C:
			return batch
		case <-ctx.Done():
			return nil
		case <-s.dropped:
			return nil
		}
	}
}

// process hands a batch to the handler and settles every event of it: ack on success; on
// failure of a batch of several, each event again on its own.
func (s *session) process(ctx context.Context, batch []Event) {
	err := s.c.call(ctx, batch)
	if err == nil {
		s.ack(batch)
		return
	}
	if ctx.Err() != nil {
		return // shutting down: left unacked for redelivery
	}
	if len(batch) == 1 {
		s.fail(batch[0], err)
		return
	}
	s.c.noteError(err)
	s.c.log.Warn("batch failed; handling its events one at a time", "events", len(batch), "err", err)
	for _, ev := range batch {
		if ctx.Err() != nil || s.isDropped() {
			return // the rest stays unacked, for redelivery
		}
		one := []Event{ev}
		if err := s.c.call(ctx, one); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.fail(ev, err)
			continue
		}
		s.ack(one)
	}
}

func (s *session) isDropped() bool {
	select {
	case <-s.dropped:
		return true
	default:
		return false
	}
}

// call runs the handler, turning a panic into an error.
func (c *Consumer) call(ctx context.Context, evs []Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("handler panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	return c.handle(ctx, evs)
}

func (s *session) ack(evs []Event) {
	s.sendMu.Lock()
	err := s.sub.Ack(ackRefs(evs)...)
	s.sendMu.Unlock()
	if err != nil {
		// The stream is broken; the receiver sees it too, and the events come again.
		s.c.log.Warn("ack failed", "events", len(evs), "err", err)
		s.c.noteError(fmt.Errorf("%w: ack: %v", ErrConnection, err))
		return
	}
	now := s.c.cfg.Now()
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.c.stats.Handled += uint64(len(evs))
	s.c.stats.LastHandledAt = now
	for _, ev := range evs {
		s.c.stats.LastPosition = max(s.c.stats.LastPosition, ev.Position)
	}
}

// fail settles an event whose handler failed: park it, or nack it with Retry after the
// backoff, on a timer so that the other events keep flowing.
func (s *session) fail(ev Event, err error) {
	attempt := ev.RetryCount + 1
	limit := s.c.cfg.MaxAttempts
	s.c.noteError(fmt.Errorf("event %s (%s@%d) attempt %d: %w", ev.ID, ev.Stream, ev.Revision, attempt, err))
	switch {
	case IsPermanent(err):
		s.nack(ev, esdb.NackActionPark, err.Error())
	case attempt >= limit:
		s.nack(ev, esdb.NackActionPark, fmt.Sprintf("attempt %d of %d: %v", attempt, limit, err))
	default:
		delay := s.c.cfg.Backoff(attempt)
		s.c.log.Warn("handler failed; will retry", "event", ev.ID, "stream", ev.Stream,
			"revision", ev.Revision, "attempt", attempt, "delay", delay, "err", err)
		s.retries.Go(func() {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
				s.nack(ev, esdb.NackActionRetry, err.Error())
			case <-s.ctx.Done():
				// The session ends; the server re-queues the event on disconnect.
			}
		})
	}
}

func (s *session) nack(ev Event, action esdb.NackAction, reason string) {
	s.sendMu.Lock()
	var err error
	if s.ctx.Err() != nil {
		err = errors.New("subscription closed")
	} else {
		err = s.sub.Nack(reason, action, ackRefs([]Event{ev})...)
	}
	s.sendMu.Unlock()
	if err != nil {
		s.c.log.Warn("nack failed", "event", ev.ID, "err", err)
		s.c.noteError(fmt.Errorf("%w: nack: %v", ErrConnection, err))
		return
	}
	s.c.mu.Lock()
	if action == esdb.NackActionPark {
		s.c.stats.Parked++
	} else {
		s.c.stats.Retried++
	}
	s.c.mu.Unlock()
	if action == esdb.NackActionPark {
		s.c.log.Warn("parked event", "event", ev.ID, "stream", ev.Stream, "revision", ev.Revision, "reason", reason)
	}
}

func (c *Consumer) noteError(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	c.stats.LastError = err.Error()
	c.mu.Unlock()
}
