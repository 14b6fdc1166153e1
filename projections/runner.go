package projections

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/subscribers"
)

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Projections to run; nil means all of Names().
	Projections []string
	// Consumer is the template of every consumer's configuration; its Group is set per
	// projection (GroupName(name) on $all, filtered by the order-stream prefix) with
	// Consumer.Group.Settings if given, else GroupSettings. Zero BufferSize, MaxBatch and
	// BatchWait take the projections' defaults (DefaultBufferSize, DefaultMaxBatch, no
	// wait), not the subscribers package's.
	Consumer subscribers.Config
	// Wrap, if set, wraps each projection's batch handler (middleware, fault injection).
	Wrap func(name string, h subscribers.BatchHandler) subscribers.BatchHandler
	// Logger, nil → discard.
	Logger *slog.Logger
}

// Batch sizing. A batch costs about one transaction whatever its size, so batches are
// sized by the backlog: the consumer takes whatever has arrived while the previous batch
// was applied (up to DefaultMaxBatch) without waiting for more. Caught up, an event is
// applied alone as soon as it arrives; behind, batches grow to hundreds or thousands of
// events and the rate grows with them. The in-flight window (DefaultBufferSize) and the
// group's read and buffer sizes (GroupSettings) let a backlog reach the consumer in
// batches that large.
const (
	DefaultBufferSize = 2048
	DefaultMaxBatch   = 1024
)

// GroupSettings are the creation settings of a projection's group: subscribers'
// defaults for a consumer making maxAttempts attempts, with reads and buffers large enough
// for backlog-sized batches, and checkpoints every second or every 2,000 events.
func GroupSettings(maxAttempts int) subscribers.Settings {
	s := subscribers.DefaultSettings("", maxAttempts)
	s.ReadBatchSize = 1000
	s.HistoryBufferSize = 4000
	s.LiveBufferSize = 4000
	s.CheckpointMax = 2000
	return s
}

// Runner runs one subscribers.Consumer per projection, each on its own persistent
// subscription group, applying batches to a Store. Several Runners (in several processes)
// may run on the same groups and the same PostgreSQL database: the groups spread the events
// among them and the store's per-order revisions keep the models exact.
type Runner struct {
	store     *Store
	dial      subscribers.Dial
	names     []string
	consumers map[string]*subscribers.Consumer
	log       *slog.Logger
}

// NewRunner validates cfg and makes the consumers; it starts nothing.
func NewRunner(store *Store, dial subscribers.Dial, cfg RunnerConfig) (*Runner, error) {
	names := cfg.Projections
	if len(names) == 0 {
		names = Names()
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{store: store, dial: dial, names: names, consumers: map[string]*subscribers.Consumer{}, log: logger}
	for _, n := range names {
		h, err := store.Handler(n)
		if err != nil {
			return nil, err
		}
		if cfg.Wrap != nil {
			h = cfg.Wrap(n, h)
		}
		c := cfg.Consumer
		if c.BufferSize == 0 {
			c.BufferSize = DefaultBufferSize
		}
		if c.MaxBatch == 0 {
			c.MaxBatch = DefaultMaxBatch
		}
		if c.BatchWait == 0 {
			c.BatchWait = -1
		}
		settings := cfg.Consumer.Group.Settings
		if settings == nil {
			gs := GroupSettings(cmp.Or(c.MaxAttempts, subscribers.DefaultMaxAttempts))
			settings = &gs
		}
		c.Group = subscribers.Group{
			Name:           GroupName(n),
			StreamPrefixes: []string{eventstore.StreamPrefix},
			Settings:       settings,
		}
		if c.Logger == nil {
			c.Logger = logger.With("projection", n)
		}
		cons, err := subscribers.NewBatch(dial, c, h)
		if err != nil {
			return nil, fmt.Errorf("projections: consumer %s: %w", n, err)
		}
		r.consumers[n] = cons
	}
	return r, nil
}

// Run runs the consumers until ctx is cancelled and returns once they have stopped: every
// batch in progress has either committed with its position (and is then acked) or rolled
// back (and is redelivered later). It returns nil on cancellation.
func (r *Runner) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, n := range r.names {
		c := r.consumers[n]
		g.Go(func() error {
			if err := c.Run(ctx); err != nil {
				return fmt.Errorf("projections: %s: %w", n, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// ConsumerStats is a projection's consumer snapshot.
type ConsumerStats struct {
	Name string `json:"name"`
	subscribers.Stats
}

// Stats returns the consumers' counters, in projection order.
func (r *Runner) Stats() []ConsumerStats {
	out := make([]ConsumerStats, 0, len(r.names))
	for _, n := range r.names {
		out = append(out, ConsumerStats{Name: n, Stats: r.consumers[n].Stats()})
	}
	return out
}

// LiveStatus is a projection's status with its consumer's counters.
type LiveStatus struct {
	ProjectionStatus
	Connected bool   `json:"connected"`
	Handled   uint64 `json:"handled"`
	Retried   uint64 `json:"retried"`
	Parked    uint64 `json:"parked"`
	LastError string `json:"lastError,omitempty"`
	// Unknown counts, by type, the events of a type this program does not know that the
	// projection applied as no-ops since the store was opened (logged once per type).
	Unknown map[string]uint64 `json:"unknownEventTypes,omitempty"`
}

// Status counts the log (see Store.CountLog) with a fresh client and returns every
// projection's status with its consumer's counters. When the log cannot be read the error
// is returned along with the status against the last count.
func (r *Runner) Status(ctx context.Context) ([]LiveStatus, error) {
	var countErr error
	client, err := r.dial()
	if err != nil {
		countErr = fmt.Errorf("projections: dial: %w", err)
	} else {
		_, countErr = r.store.CountLog(ctx, client)
		_ = client.Close()
	}
	st, err := r.store.Status(ctx)
	if err != nil {
		return nil, err
	}
	stats := map[string]subscribers.Stats{}
	for _, s := range r.Stats() {
		stats[s.Name] = s.Stats
	}
	unknown := map[string]map[string]uint64{}
	for _, u := range r.store.UnknownEventTypes() {
		if unknown[u.Projection] == nil {
			unknown[u.Projection] = map[string]uint64{}
		}
		unknown[u.Projection][u.Type] = u.Count
	}
	out := make([]LiveStatus, 0, len(st))
	for _, s := range st {
		c, ok := stats[s.Name]
		if !ok {
			continue // not run by this runner
		}
		out = append(out, LiveStatus{ProjectionStatus: s, Connected: c.Connected, Handled: c.Handled, Retried: c.Retried, Parked: c.Parked, LastError: c.LastError, Unknown: unknown[s.Name]})
	}
	return out, countErr
}

// Handler serves GET /healthz (200 when every consumer is connected to its group, 503
// otherwise, with a JSON body either way) and GET /status (JSON: per projection position,
// head, lag, last applied time and consumer counters).
func (r *Runner) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		type entry struct {
			Name      string `json:"name"`
			Connected bool   `json:"connected"`
			LastError string `json:"lastError,omitempty"`
		}
		body := struct {
			Status      string  `json:"status"`
			Projections []entry `json:"projections"`
		}{Status: "ok"}
		code := http.StatusOK
		for _, s := range r.Stats() {
			body.Projections = append(body.Projections, entry{s.Name, s.Connected, s.LastError})
			if !s.Connected {
				code, body.Status = http.StatusServiceUnavailable, "unavailable"
			}
		}
		writeJSON(w, code, body)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
		defer cancel()
		st, err := r.Status(ctx)
		body := struct {
			Projections []LiveStatus `json:"projections"`
			LogError    string       `json:"logError,omitempty"`
		}{Projections: st}
		if st == nil && err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		if err != nil {
			body.LogError = err.Error()
		}
		writeJSON(w, http.StatusOK, body)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
