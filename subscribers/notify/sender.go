package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/subscribers"
)

// SentLog remembers which events already had their e-mail sent. SQLSentLog is the real one;
// it must be durable before RecordSent returns.
type SentLog interface {
	// WasSent reports whether RecordSent was called for eventID.
	WasSent(ctx context.Context, eventID uuid.UUID) (bool, error)
	// RecordSent records that the message messageID caused by eventID was sent at at.
	// Recording an event id twice is not an error.
	RecordSent(ctx context.Context, eventID uuid.UUID, messageID string, at time.Time) error
}

// Defaults of Config.
const (
	DefaultGroup          = "notifications-email"
	DefaultMaxAttempts    = 20
	DefaultBufferSize     = 8
	DefaultLoadTimeout    = 10 * time.Second
	DefaultMessageTimeout = 2 * time.Minute
)

// DefaultBackoff is 500ms·2^(attempt-1) capped at 30 s: with DefaultMaxAttempts an event
// waits about seven minutes in all before it is parked, so an SMTP outage of a few minutes
// parks nothing.
func DefaultBackoff(attempt int) time.Duration {
	return subscribers.Exponential(attempt, 500*time.Millisecond, 30*time.Second)
}

// Config configures a Sender. Zero fields take their defaults.
type Config struct {
	// Group is the persistent subscription group's name, on $all filtered to the order
	// streams. Default DefaultGroup.
	Group string
	// From is the sender's address. Default DefaultFrom.
	From string
	// Domain is the right-hand side of the Message-IDs. Default DefaultDomain.
	Domain string
	// MaxAttempts is the number of deliveries of an event that fails temporarily before it is
	// parked. Default DefaultMaxAttempts.
	MaxAttempts int
	// Backoff is the delay before an event that failed temporarily on attempt n (from 1) is
	// retried. Default DefaultBackoff.
	Backoff func(attempt int) time.Duration
	// Reconnect is the delay between reconnections to the node. Default subscribers'.
	Reconnect func(attempt int) time.Duration
	// BufferSize is the number of events in flight per sender. Small, since sending is slow
	// and an event must not time out on the server while it waits its turn. Default
	// DefaultBufferSize.
	BufferSize int
	// MessageTimeout is the group's message timeout, used when the group is created.
	// Default DefaultMessageTimeout.
	MessageTimeout time.Duration
	// LoadTimeout bounds reading an order's stream, and recording a sent message. Default
	// DefaultLoadTimeout.
	LoadTimeout time.Duration
	Logger      *slog.Logger     // nil: discard
	Now         func() time.Time // nil: time.Now
	// Wrap, if set, wraps the sender's handler (middleware: timing, fault injection).
	Wrap func(h subscribers.Handler) subscribers.Handler
}

// Validate reports a configuration value out of range.
func (c Config) Validate() error {
	switch {
	case c.MaxAttempts < 0:
		return fmt.Errorf("%w: max attempts %d", ErrInvalidConfig, c.MaxAttempts)
	case c.BufferSize < 0:
		return fmt.Errorf("%w: buffer size %d", ErrInvalidConfig, c.BufferSize)
	case c.MessageTimeout < 0:
		return fmt.Errorf("%w: message timeout %v", ErrInvalidConfig, c.MessageTimeout)
	case c.LoadTimeout < 0:
		return fmt.Errorf("%w: load timeout %v", ErrInvalidConfig, c.LoadTimeout)
	case strings.ContainsAny(c.Domain, "<>@ \t\r\n"):
		return fmt.Errorf("%w: Message-ID domain %q", ErrInvalidConfig, c.Domain)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.From == "" {
		c.From = DefaultFrom
	}
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff
	}
	if c.BufferSize == 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.MessageTimeout == 0 {
		c.MessageTimeout = DefaultMessageTimeout
	}
	if c.LoadTimeout == 0 {
		c.LoadTimeout = DefaultLoadTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// SubscriptionGroup returns the persistent subscription group a sender with this
// configuration uses: $all filtered to the order streams, created from the start (the
// consumer always creates groups from the start), RoundRobin.
func (c Config) SubscriptionGroup() subscribers.Group {
	c = c.withDefaults()
	settings := subscribers.DefaultSettings("", c.MaxAttempts)
	settings.MessageTimeout = c.MessageTimeout
	settings.Strategy = subscribers.RoundRobin
	return subscribers.Group{
		Name:           c.Group,
		StreamPrefixes: []string{eventstore.StreamPrefix},
		Settings:       &settings,
	}
}

// Stats is a snapshot of what a Sender did since it was made.
type Stats struct {
	Consumer    subscribers.Stats
	Sent        uint64            // messages sent and recorded
	AlreadySent uint64            // events skipped because the sent-log had them
	Failed      uint64            // handler failures (retried or parked)
	Unknown     map[string]uint64 // events of a type the sender has no decision for, by type (skipped)
}

// Sender sends the notices; see the package doc.
type Sender struct {
	cfg       Config
	sent      SentLog
	transport Transport
	consumer  *subscribers.Consumer
	loader    *loader

	nSent, nAlready, nFailed atomic.Uint64

	mu sync.Mutex
	// sentNotRecorded holds the events whose message was sent but whose RecordSent failed:
	// their retry records without sending again.
	sentNotRecorded map[uuid.UUID]struct{}
	unknown         map[string]uint64 // see Stats.Unknown
}

// New makes a sender; it starts nothing. dial makes the clients of the subscription and of
// the reads of order streams (each its own).
func New(dial subscribers.Dial, sent SentLog, transport Transport, cfg Config) (*Sender, error) {
	if dial == nil || sent == nil || transport == nil {
		return nil, fmt.Errorf("%w: dial, sent-log and transport are required", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Sender{
		cfg:       cfg,
		sent:      sent,
		transport: transport,
		loader:    &loader{dial: dial, timeout: cfg.LoadTimeout},

		sentNotRecorded: map[uuid.UUID]struct{}{},
		unknown:         map[string]uint64{},
	}
	h := subscribers.Handler(s.Handle)
	if cfg.Wrap != nil {
		h = cfg.Wrap(h)
	}
	c, err := subscribers.New(dial, subscribers.Config{
		Group:       cfg.SubscriptionGroup(),
		BufferSize:  cfg.BufferSize,
		MaxAttempts: cfg.MaxAttempts,
		Backoff:     cfg.Backoff,
		Reconnect:   cfg.Reconnect,
		Logger:      cfg.Logger,
		Now:         cfg.Now,
	}, h)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s.consumer = c
	return s, nil
}

// Run sends until ctx is cancelled, then returns nil once everything stopped (see
// subscribers.Consumer.Run).
func (s *Sender) Run(ctx context.Context) error {
	defer s.loader.close()
	return s.consumer.Run(ctx)
}

// Stats returns a snapshot of the sender's counters; safe for concurrent use.
func (s *Sender) Stats() Stats {
	s.mu.Lock()
	unknown := maps.Clone(s.unknown)
	s.mu.Unlock()
	return Stats{
		Consumer:    s.consumer.Stats(),
		Sent:        s.nSent.Load(),
		AlreadySent: s.nAlready.Load(),
		Failed:      s.nFailed.Load(),
		Unknown:     unknown,
	}
}

// kinds maps the event types that cause a notice to the notice; noNotice lists those that
// cause none. Every type of aggregate.EventTypes is in one of the two (a test checks it): an
// event of any other type is counted in Stats.Unknown, and its type logged once.
var (
	kinds = map[string]Kind{
		aggregate.TypeOrderPaid:    KindPaymentConfirmation,
		aggregate.TypeOrderShipped: KindShippingNotice,
	}
	noNotice = map[string]bool{
		aggregate.TypeOrderPlaced:    true,
		aggregate.TypeOrderCancelled: true,
	}
)

// Handle is the subscribers.Handler of the sender: check the sent-log, load the order,
// render, send, record. It is exported for tests and for running a sender under another
// loop; errors are classified (subscribers.Permanent for what can never succeed).
func (s *Sender) Handle(ctx context.Context, ev subscribers.Event) error {
	err := s.handle(ctx, ev)
	if err != nil {
		s.nFailed.Add(1)
		s.cfg.Logger.Warn("notify: send failed", "event", ev.ID, "stream", ev.Stream,
			"type", ev.Type, "retry", ev.RetryCount, "permanent", subscribers.IsPermanent(err), "err", err)
	}
	return err
}

func (s *Sender) handle(ctx context.Context, ev subscribers.Event) error {
	if !strings.HasPrefix(ev.Stream, eventstore.StreamPrefix) {
		return nil
	}
	kind, ok := kinds[ev.Type]
	if !ok {
		if !noNotice[ev.Type] {
			s.skipUnknown(ev)
		}
		return nil
	}
	done, err := s.sent.WasSent(ctx, ev.ID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSentLog, err)
	}
	if done {
		s.nAlready.Add(1)
		return nil
	}
	order, err := s.loader.load(ctx, ev.Stream, ev.Revision)
	if err != nil {
		return err
	}
	msg, err := Render(kind, order, ev.ID, s.cfg.From, s.cfg.Domain, s.cfg.Now())
	if err != nil {
		return subscribers.Permanent(err)
	}
	if !s.unrecorded(ev.ID) {
		if err := s.transport.Send(ctx, msg); err != nil {
			return err
		}
		s.markUnrecorded(ev.ID, true)
		s.nSent.Add(1)
		s.cfg.Logger.Info("notify: sent", "kind", kind, "order", msg.OrderID, "to", msg.To, "messageID", msg.ID)
	}
	// A crash here sends the message again, with the same Message-ID. A failure to record
	// does not: the retry only records (as long as this process lives).
	if err := s.record(ctx, ev.ID, msg.ID); err != nil {
		return fmt.Errorf("%w: record %s: %w", ErrSentLog, ev.ID, err)
	}
	s.markUnrecorded(ev.ID, false)
	return nil
}

// record writes to the sent-log even when ctx was cancelled (a shutdown) after the send, so a
// graceful stop never causes a duplicate.
func (s *Sender) record(ctx context.Context, eventID uuid.UUID, messageID string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.LoadTimeout)
	defer cancel()
	return s.sent.RecordSent(ctx, eventID, messageID, s.cfg.Now())
}

// skipUnknown counts an event of a type the sender has no decision for (one appended by a
// newer writer, say), logging its type the first time.
func (s *Sender) skipUnknown(ev subscribers.Event) {
	s.mu.Lock()
	s.unknown[ev.Type]++
	first := s.unknown[ev.Type] == 1
	s.mu.Unlock()
	if first {
		s.cfg.Logger.Warn("notify: skipping events of an unknown type (logged once per type, counted in /metrics)",
			"type", ev.Type, "event", ev.ID, "stream", ev.Stream)
	}
}

func (s *Sender) unrecorded(id uuid.UUID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sentNotRecorded[id]
	return ok
}

func (s *Sender) markUnrecorded(id uuid.UUID, v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v {
		s.sentNotRecorded[id] = struct{}{}
	} else {
		delete(s.sentNotRecorded, id)
	}
}

// loader reads order streams with its own client, made on first use and replaced after an
// error that may have broken it (the client's connection machinery does not recover from a
// failed discovery).
type loader struct {
	dial    subscribers.Dial
	timeout time.Duration

	mu     sync.Mutex
	client *esdb.Client
	repo   *eventstore.Repository
}

// load folds the order of stream up to and including revision.
func (l *loader) load(ctx context.Context, stream string, revision uint64) (*aggregate.Order, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.repo == nil {
		client, err := l.dial()
		if err != nil {
			return nil, fmt.Errorf("%w: dial: %w", ErrLoadOrder, err)
		}
		repo, err := eventstore.NewRepository(client, eventstore.RepositoryConfig{})
		if err != nil {
			_ = client.Close()
			return nil, fmt.Errorf("%w: %w", ErrLoadOrder, err)
		}
		l.client, l.repo = client, repo
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	history, err := l.repo.ReadStream(ctx, stream)
	if err != nil {
		switch {
		case errors.Is(err, eventstore.ErrStreamNotFound), errors.Is(err, eventstore.ErrStreamDeleted),
			errors.Is(err, eventstore.ErrMalformedEvent):
			return nil, subscribers.Permanent(fmt.Errorf("%w %s: %w", ErrLoadOrder, stream, err))
		}
		l.closeLocked()
		return nil, fmt.Errorf("%w %s: %w", ErrLoadOrder, stream, err)
	}
	var events []aggregate.Event
	found := false
	for _, r := range history {
		if r.Revision > revision {
			break
		}
		events = append(events, r.Event)
		found = found || r.Revision == revision
	}
	if !found {
		return nil, subscribers.Permanent(fmt.Errorf("%w %s: revision %d not in the stream", ErrLoadOrder, stream, revision))
	}
	order, err := aggregate.Load(strings.TrimPrefix(stream, eventstore.StreamPrefix), events)
	if err != nil {
		return nil, subscribers.Permanent(fmt.Errorf("%w %s: %w", ErrLoadOrder, stream, err))
	}
	return order, nil
}

func (l *loader) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeLocked()
}

func (l *loader) closeLocked() {
	if l.client != nil {
		_ = l.client.Close()
	}
	l.client, l.repo = nil, nil
}
