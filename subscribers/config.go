package subscribers

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderstore/orders/eventstore"
)

// Defaults used for zero Config fields.
const (
	DefaultBufferSize     = 64
	DefaultMaxBatch       = 64
	DefaultMaxAttempts    = 5
	DefaultBatchWait      = 2 * time.Millisecond
	DefaultConnectTimeout = 10 * time.Second
)

// Group names the persistent subscription group and how to create it when missing.
type Group struct {
	Name           string
	Stream         string   // "" means $all
	StreamPrefixes []string // $all only: server-side stream-name prefix filter (e.g. "order-"); empty = no filter
	// Settings used when the group is created. nil means DefaultSettings(stream, MaxAttempts):
	// start from the beginning, RoundRobin, MaxRetryCount above the loop's MaxAttempts (so the
	// loop parks with its own reason), MessageTimeout 30 s, checkpoints every second (at least
	// one processed event) or every 500 events, links resolved for stream groups only.
	// A group that already exists keeps its own settings.
	Settings *Settings
}

// Consumer strategies of a group (the server's names).
const (
	RoundRobin       = "RoundRobin"
	DispatchToSingle = "DispatchToSingle"
	Pinned           = "Pinned"
)

// Settings are the creation settings of a persistent subscription group, in this project's
// terms; the consumer hands them to the server through the client. Every field is taken as
// it is: start from DefaultSettings. Groups always start from the beginning of their stream.
type Settings struct {
	ResolveLinks    bool          // deliver the targets of link events
	MaxRetryCount   int           // the server parks a message retried this many times
	MessageTimeout  time.Duration // an unacked message is retried after this long
	CheckpointAfter time.Duration // the group's position is saved this often...
	CheckpointMin   int           // ...once at least this many messages were processed,
	CheckpointMax   int           // and at once when this many were
	MaxSubscribers  int           // 0: unlimited
	Strategy        string        // RoundRobin, DispatchToSingle or Pinned
	// The group's read and buffer sizes, in events; 0 keeps the client's default. A consumer
	// that applies backlog-sized batches wants them large enough to fill a batch.
	ReadBatchSize     int
	HistoryBufferSize int
	LiveBufferSize    int
}

// client is s as the official client takes it; the buffer sizes and the rest keep the
// client's defaults.
func (s Settings) client() esdb.PersistentSubscriptionSettings {
	c := esdb.SubscriptionSettingsDefault()
	c.ResolveLinkTos = s.ResolveLinks
	c.MaxRetryCount = int32(s.MaxRetryCount)
	c.MessageTimeout = int32(s.MessageTimeout / time.Millisecond)
	c.CheckpointAfter = int32(s.CheckpointAfter / time.Millisecond)
	c.CheckpointLowerBound = int32(s.CheckpointMin)
	c.CheckpointUpperBound = int32(s.CheckpointMax)
	c.MaxSubscriberCount = int32(s.MaxSubscribers)
	if s.MaxSubscribers == 0 {
		c.MaxSubscriberCount = esdb.SubscriberCountUnlimited
	}
	c.ConsumerStrategyName = esdb.ConsumerStrategy(s.Strategy)
	if s.ReadBatchSize > 0 {
		c.ReadBatchSize = int32(s.ReadBatchSize)
	}
	if s.HistoryBufferSize > 0 {
		c.HistoryBufferSize = int32(s.HistoryBufferSize)
	}
	if s.LiveBufferSize > 0 {
		c.LiveBufferSize = int32(s.LiveBufferSize)
	}
	return c
}

// Key is the server's name for the group: "<stream>::<name>", "$all::<name>" for $all.
func (g Group) Key() string {
	if g.Stream == "" {
		return "$all::" + g.Name
	}
	return g.Stream + "::" + g.Name
}

// ParkedStream is the stream holding the group's parked events.
func (g Group) ParkedStream() string { return "$persistentsubscription-" + g.Key() + "-parked" }

// DefaultSettings are the creation settings of a group whose Settings are nil, for a consumer
// making maxAttempts handler attempts per event. stream is the group's stream ("" for $all):
// links are resolved for stream groups (a "$ce-order" group delivers the orders' events), not
// for $all, which holds the link events and their targets both.
func DefaultSettings(stream string, maxAttempts int) Settings {
	return Settings{
		ResolveLinks: stream != "",
		// The server parks by itself once a message with retry count >= MaxRetryCount is
		// retried again; the loop parks at retry count MaxAttempts-1. Leave room for the
		// retries that disconnects and message timeouts add.
		MaxRetryCount:   max(10, 2*maxAttempts),
		MessageTimeout:  30 * time.Second,
		CheckpointAfter: time.Second,
		CheckpointMin:   1,
		CheckpointMax:   500,
		Strategy:        RoundRobin,
	}
}

// Config configures a Consumer. Zero fields take the defaults given.
type Config struct {
	Group       Group
	BufferSize  int                             // in-flight per connection, default 64
	MaxBatch    int                             // with a BatchHandler: most events per call, default 64
	BatchWait   time.Duration                   // with a BatchHandler: longest wait for more events once one is there, default 2ms; negative: no wait
	MaxAttempts int                             // handler attempts per event before parking, default 5
	Backoff     func(attempt int) time.Duration // delay before the nack Retry after attempt n (1-based); default exponential 100ms..5s with jitter
	Reconnect   func(attempt int) time.Duration // delay between reconnects (attempt 1-based); default exponential 100ms..5s
	// ConnectTimeout bounds creating and joining the group, default 10 s. (The client's own
	// discovery is not bounded by it; see the package doc.)
	ConnectTimeout time.Duration
	Logger         *slog.Logger     // nil → discard
	Now            func() time.Time // nil → time.Now
}

// Validate reports whether cfg can be used (zero values are fine: they take defaults).
func (cfg Config) Validate() error {
	switch {
	case cfg.Group.Name == "":
		return fmt.Errorf("%w: group name required", ErrInvalidConfig)
	case cfg.Group.Stream != "" && len(cfg.Group.StreamPrefixes) > 0:
		return fmt.Errorf("%w: stream prefixes apply to $all groups only (group %q on stream %q)",
			ErrInvalidConfig, cfg.Group.Name, cfg.Group.Stream)
	case cfg.BufferSize < 0:
		return fmt.Errorf("%w: buffer size %d", ErrInvalidConfig, cfg.BufferSize)
	case cfg.MaxBatch < 0:
		return fmt.Errorf("%w: max batch %d", ErrInvalidConfig, cfg.MaxBatch)
	case cfg.MaxAttempts < 0:
		return fmt.Errorf("%w: max attempts %d", ErrInvalidConfig, cfg.MaxAttempts)
	case cfg.ConnectTimeout < 0:
		return fmt.Errorf("%w: connect timeout %v", ErrInvalidConfig, cfg.ConnectTimeout)
	}
	for _, p := range cfg.Group.StreamPrefixes {
		if p == "" {
			return fmt.Errorf("%w: empty stream prefix", ErrInvalidConfig)
		}
	}
	return nil
}

func (cfg Config) withDefaults() Config {
	if cfg.BufferSize == 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.BatchWait == 0 {
		cfg.BatchWait = DefaultBatchWait
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Reconnect == nil {
		cfg.Reconnect = DefaultReconnect
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// Exponential is base·2^(attempt-1) (attempt from 1), capped at limit: the shape of every
// backoff and reconnect delay of the consumers.
func Exponential(attempt int, base, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// DefaultBackoff is 100ms·2^(attempt-1) capped at 5 s, minus up to 20% of jitter so that
// events failing together do not retry in lockstep.
func DefaultBackoff(attempt int) time.Duration {
	d := Exponential(attempt, 100*time.Millisecond, 5*time.Second)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// DefaultReconnect is 100ms·2^(attempt-1) capped at 5 s.
func DefaultReconnect(attempt int) time.Duration {
	return Exponential(attempt, 100*time.Millisecond, 5*time.Second)
}

// Dial makes a fresh *esdb.Client; the loop calls it for each connection and closes the
// client when the connection ends (see the package doc for why).
type Dial func() (*esdb.Client, error)

// DialString is a Dial connecting to connString with eventstore.Connect.
func DialString(connString string, opts ...eventstore.ConnectOption) Dial {
	return func() (*esdb.Client, error) { return eventstore.Connect(connString, opts...) }
}
