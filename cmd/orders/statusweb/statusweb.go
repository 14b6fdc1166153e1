// Package statusweb is the HTTP face of `orders serve`: a status page of every
// projection and sender, a health check that notices stalls, and Prometheus
// metrics.
//
// Contract. New(src, opts) returns a Server (an http.Handler) serving:
//
//	GET /             status page: every subscriber with position, head, lag,
//	                  time since its last event, counters and state; it
//	                  refreshes itself (a little JavaScript; a <noscript>
//	                  meta refresh without it)
//	GET /status.json  the same as JSON, with "healthy"; with Options.Figures
//	                  also "topCustomers" and "revenue" (by UTC day), which the
//	                  page shows as tables and an inline SVG bar chart per
//	                  currency
//	GET /healthz      200 {"status":"ok"} or 503 {"status":"unhealthy","reasons":[...]}
//	GET /metrics      Prometheus text format
//	GET /static/...   the page's CSS and JavaScript (embedded)
//
// Every request reads the subscribers from the Source once. A subscriber is
// stalled when its lag is above zero and it has made no progress for
// Options.StallAfter: no lower lag, no more handled events and no newer
// LastHandledAt seen in that time. Progress is tracked in memory across
// requests, starting when the Server first sees a subscriber, so a process
// that was never asked is never called stalled and a restarted process gets
// StallAfter before it is. /healthz is unhealthy while any subscriber is
// stalled or the Source fails; a subscriber that is up to date (lag 0) is
// healthy however long ago it handled an event.
//
// Metrics (all prefixed orders_): per subscriber (labels name, kind) the
// gauges subscriber_lag, subscriber_position, subscriber_head,
// subscriber_parked, subscriber_connected, subscriber_stalled and
// subscriber_seconds_since_last_handled, and the counters
// subscriber_handled_total and subscriber_retried_total, taken from the
// Source on each scrape; the histograms append_seconds and handle_seconds
// (label name), fed through Metrics.ObserveAppend and Metrics.ObserveHandle.
package statusweb

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed templates/status.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Subscriber kinds.
const (
	KindProjection = "projection"
	KindSender     = "sender"
)

// SubscriberStatus is one subscriber as the Source sees it now.
type SubscriberStatus struct {
	Name          string    // unique among the Source's subscribers
	Kind          string    // KindProjection or KindSender
	Position      uint64    // the last position it recorded (applied or sent)
	Head          uint64    // the head of what it follows
	Lag           uint64    // how far behind it is (events or positions; 0: up to date)
	LastHandledAt time.Time // zero: never in this process
	Handled       uint64
	Retried       uint64
	Parked        uint64
	Connected     bool
	LastError     string
	// Unknown counts, by type, the events it skipped because it does not know their type
	// (appended by a newer writer): /metrics shows them, so they are not silently lost.
	Unknown map[string]uint64
}

// Source reports the subscribers; the lead adapts projections and senders.
type Source interface {
	Subscribers(ctx context.Context) ([]SubscriberStatus, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) ([]SubscriberStatus, error)

// Subscribers calls f.
func (f SourceFunc) Subscribers(ctx context.Context) ([]SubscriberStatus, error) { return f(ctx) }

// Options configures a Server.
type Options struct {
	// StallAfter is how long a lagging subscriber may go without progress
	// before it is stalled (0: 30s).
	StallAfter time.Duration
	// Registry receives the metrics and is what /metrics serves. nil: a new
	// registry with the Go and process collectors too.
	Registry *prometheus.Registry
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Refresh is how often the status page refreshes itself (0: 2s).
	Refresh time.Duration
	// Logger receives Source errors (nil: discard).
	Logger *slog.Logger
	// Figures, if set, gives the top customers and the revenue by day that the
	// page (with a chart) and /status.json show.
	Figures Figures
	// Money formats an amount in minor units of a currency for the page (nil:
	// the integer and the currency code).
	Money func(minor int64, currency string) string
}

// DefaultStallAfter is Options.StallAfter's default.
const DefaultStallAfter = 30 * time.Second

// Server serves the status page, /status.json, /healthz and /metrics.
type Server struct {
	src     Source
	opts    Options
	mux     *http.ServeMux
	page    *template.Template
	metrics *Metrics
	prom    http.Handler // promhttp over opts.Registry

	mu     sync.Mutex
	track  map[string]*progress // by subscriber name
	latest []Status             // the last evaluation, for the metrics collector
}

var _ http.Handler = (*Server)(nil)

// progress is what the Server remembers of one subscriber between requests.
type progress struct {
	lag           uint64
	handled       uint64
	lastHandledAt time.Time
	progressAt    time.Time // last time it was seen up to date or moving
}

// New returns a Server over src, registering its metrics with
// opts.Registry. It fails if the registry already holds metrics of the same
// names.
func New(src Source, opts Options) (*Server, error) {
	if opts.StallAfter <= 0 {
		opts.StallAfter = DefaultStallAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Refresh <= 0 {
		opts.Refresh = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Money == nil {
		opts.Money = defaultMoney
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
		if err := registerAll(opts.Registry, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, err
		}
	}
	s := &Server{src: src, opts: opts, mux: http.NewServeMux(), track: map[string]*progress{}}
	s.metrics = newMetrics()
	if err := registerAll(opts.Registry, s.metrics.append, s.metrics.handle, (*subscriberCollector)(s)); err != nil {
		return nil, err
	}
	s.prom = promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{})
	s.page = template.Must(template.New("status.html").Funcs(template.FuncMap{
		"since": func(d time.Duration) string { return formatSince(d) },
	}).ParseFS(templateFS, "templates/status.html"))

	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	s.mux.HandleFunc("GET /{$}", s.serveStatusPage)
	s.mux.HandleFunc("GET /status.json", s.serveStatusJSON)
	s.mux.HandleFunc("GET /healthz", s.serveHealth)
	s.mux.Handle("GET /metrics", http.HandlerFunc(s.serveMetrics))
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	return s, nil
}

func registerAll(reg *prometheus.Registry, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Metrics are the latency histograms the lead feeds from the repository and
// the consumers.
func (s *Server) Metrics() *Metrics { return s.metrics }

const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeHTTP serves the pages.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// Status is one subscriber with what the Server made of it.
type Status struct {
	SubscriberStatus
	// SinceLastHandled is the time since LastHandledAt (0 if never).
	SinceLastHandled time.Duration
	// State is "ok" (lag 0), "catching up" (lagging and moving),
	// "disconnected" or "stalled".
	State   string
	Stalled bool
	Reason  string // why it is stalled, "" if it is not
}

// StateClass is State as a CSS class name.
func (st Status) StateClass() string { return "state-" + strings.ReplaceAll(st.State, " ", "-") }

// Report is the evaluation of every subscriber at one instant.
type Report struct {
	Healthy     bool
	CheckedAt   time.Time
	Subscribers []Status
	Reasons     []string // why it is not healthy
}

// Check reads the Source once and evaluates every subscriber, updating the
// progress history.
func (s *Server) Check(ctx context.Context) Report {
	now := s.opts.Now()
	subs, err := s.src.Subscribers(ctx)
	rep := Report{Healthy: true, CheckedAt: now}
	if err != nil {
		s.opts.Logger.Warn("statusweb: read subscribers", "err", err)
		rep.Healthy = false
		rep.Reasons = append(rep.Reasons, "cannot read subscribers: "+err.Error())
	}
	sort.SliceStable(subs, func(i, j int) bool {
		if subs[i].Kind != subs[j].Kind {
			return subs[i].Kind < subs[j].Kind
		}
		return subs[i].Name < subs[j].Name
	})

	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[string]bool, len(subs))
	for _, sub := range subs {
		seen[sub.Name] = true
		st := s.evaluate(sub, now)
		if st.Stalled {
			rep.Healthy = false
			rep.Reasons = append(rep.Reasons, st.Reason)
		}
		rep.Subscribers = append(rep.Subscribers, st)
	}
	if err == nil {
		for name := range s.track {
			if !seen[name] {
				delete(s.track, name)
			}
		}
		s.latest = rep.Subscribers
	}
	return rep
}

// evaluate updates sub's progress history and decides whether it is stalled.
func (s *Server) evaluate(sub SubscriberStatus, now time.Time) Status {
	p := s.track[sub.Name]
	if p == nil {
		p = &progress{lag: sub.Lag, handled: sub.Handled, lastHandledAt: sub.LastHandledAt, progressAt: now}
		s.track[sub.Name] = p
	}
	if sub.Lag == 0 || sub.Lag < p.lag || sub.Handled > p.handled {
		p.progressAt = now
	}
	if sub.LastHandledAt.After(p.lastHandledAt) {
		p.lastHandledAt = sub.LastHandledAt
		switch {
		case sub.LastHandledAt.After(now): // a clock ahead of ours counts as now
			p.progressAt = now
		case sub.LastHandledAt.After(p.progressAt):
			p.progressAt = sub.LastHandledAt
		}
	}
	p.lag, p.handled = sub.Lag, sub.Handled

	st := Status{SubscriberStatus: sub}
	if !sub.LastHandledAt.IsZero() {
		st.SinceLastHandled = max(0, now.Sub(sub.LastHandledAt))
	}
	idle := now.Sub(p.progressAt)
	switch {
	case sub.Lag > 0 && idle >= s.opts.StallAfter:
		st.Stalled, st.State = true, "stalled"
		st.Reason = sub.Kind + " " + sub.Name + ": lag " + formatUint(sub.Lag) + " and no progress for " + formatSince(idle)
		if !sub.Connected {
			st.Reason += " (not connected)"
		}
		if sub.LastError != "" {
			st.Reason += "; last error: " + sub.LastError
		}
	case !sub.Connected:
		st.State = "disconnected"
	case sub.Lag > 0:
		st.State = "catching up"
	default:
		st.State = "ok"
	}
	return st
}

// ---- endpoints ----

type statusPage struct {
	Report
	Figures    figuresView
	Refresh    int // seconds
	RefreshMs  int64
	StallAfter time.Duration
}

func (s *Server) serveStatusPage(w http.ResponseWriter, r *http.Request) {
	rep := s.Check(r.Context())
	_, fig := s.readFigures(r.Context())
	var buf bytes.Buffer
	if err := s.page.Execute(&buf, statusPage{Report: rep, Figures: fig, Refresh: max(1, int(s.opts.Refresh/time.Second)), RefreshMs: s.opts.Refresh.Milliseconds(), StallAfter: s.opts.StallAfter}); err != nil {
		s.opts.Logger.Error("statusweb: render", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	// 200 even when unhealthy: the page works, its content says what is wrong.
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// jsonStatus is one subscriber in /status.json.
type jsonStatus struct {
	Name                    string     `json:"name"`
	Kind                    string     `json:"kind"`
	Position                uint64     `json:"position"`
	Head                    uint64     `json:"head"`
	Lag                     uint64     `json:"lag"`
	LastHandledAt           *time.Time `json:"lastHandledAt"`
	SecondsSinceLastHandled *float64   `json:"secondsSinceLastHandled"`
	Handled                 uint64     `json:"handled"`
	Retried                 uint64     `json:"retried"`
	Parked                  uint64     `json:"parked"`
	Connected               bool       `json:"connected"`
	State                   string     `json:"state"`
	Stalled                 bool       `json:"stalled"`
	Reason                  string     `json:"reason,omitempty"`
	LastError               string     `json:"lastError,omitempty"`
}

type jsonReport struct {
	Healthy     bool         `json:"healthy"`
	CheckedAt   time.Time    `json:"checkedAt"`
	Reasons     []string     `json:"reasons"`
	Subscribers []jsonStatus `json:"subscribers"`
	// With Options.Figures: the read models' figures, or why they are missing.
	TopCustomers []CustomerFigures `json:"topCustomers,omitzero"`
	Revenue      []DayRevenue      `json:"revenue,omitzero"`
	FiguresError string            `json:"figuresError,omitempty"`
}

func toJSON(rep Report) jsonReport {
	out := jsonReport{Healthy: rep.Healthy, CheckedAt: rep.CheckedAt.UTC(), Reasons: rep.Reasons, Subscribers: []jsonStatus{}}
	if out.Reasons == nil {
		out.Reasons = []string{}
	}
	for _, st := range rep.Subscribers {
		js := jsonStatus{
			Name: st.Name, Kind: st.Kind, Position: st.Position, Head: st.Head, Lag: st.Lag,
			Handled: st.Handled, Retried: st.Retried, Parked: st.Parked, Connected: st.Connected,
			State: st.State, Stalled: st.Stalled, Reason: st.Reason, LastError: st.LastError,
		}
		if !st.LastHandledAt.IsZero() {
			t := st.LastHandledAt.UTC()
			secs := st.SinceLastHandled.Seconds()
			js.LastHandledAt, js.SecondsSinceLastHandled = &t, &secs
		}
		out.Subscribers = append(out.Subscribers, js)
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) serveStatusJSON(w http.ResponseWriter, r *http.Request) {
	out := toJSON(s.Check(r.Context()))
	rm, v := s.readFigures(r.Context())
	if v.Enabled {
		out.TopCustomers, out.Revenue, out.FiguresError = rm.TopCustomers, rm.Revenue, v.Error
		if out.TopCustomers == nil {
			out.TopCustomers = []CustomerFigures{}
		}
		if out.Revenue == nil {
			out.Revenue = []DayRevenue{}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// healthBody is the body of /healthz.
type healthBody struct {
	Status  string   `json:"status"` // "ok" or "unhealthy"
	Reasons []string `json:"reasons"`
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	rep := s.Check(r.Context())
	if rep.Healthy {
		writeJSON(w, http.StatusOK, healthBody{Status: "ok", Reasons: []string{}})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, healthBody{Status: "unhealthy", Reasons: rep.Reasons})
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	s.Check(r.Context()) // the collector reports this evaluation
	s.prom.ServeHTTP(w, r)
}
