// Package webui is the embedded EventStoreDB node's web UI, served over
// HTTP/1.1 on the node's port beside gRPC, like EventStoreDB's own UI.
//
// Contract. New returns an http.Handler serving:
//
//	GET  /                                      redirect to /web/streams
//	GET  /web/streams?q=&after=&sys=1           recent streams (from the tail of $all), or
//	                                            streams whose name starts with q; a bare id q
//	                                            also finds "<prefix><q>" (Options.IDPrefixes)
//	GET  /web/streams/{stream}?from=&count=&open=0
//	                                            a stream's events, newest first, paged, shown
//	                                            expanded (open=0: collapsed); its metadata;
//	                                            deleted and tombstoned banners
//	GET  /web/streams/{stream}/{revision}       one event; a link shows its resolved target
//	GET  /web/all?before=&count=&open=1&sys=0   $all, newest first, paged by position;
//	                                            open=1 expands every event, sys=0 hides
//	                                            system events (types starting with "$")
//	GET  /web/all/{position}                    one record of $all by position
//	GET  /web/subscriptions                     every persistent subscription group
//	GET  /web/subscriptions/{stream}/{group}    one group: settings, connections,
//	                                            positions, parked messages
//	POST /web/subscriptions/{stream}/{group}/replay-parked
//	GET  /web/static/...                        CSS and JavaScript (embedded)
//
// Stream and group names are path-escaped in URLs (they may hold "/", "$"
// and "::"). Pages are rendered on the server with html/template, so
// everything shown (names, types, event data and metadata, which are
// untrusted) is escaped; event data is pretty-printed with json.Indent only
// when it is valid UTF-8 JSON, otherwise shown as text with invalid UTF-8
// and control characters replaced by U+FFFD, plus a hex dump (of the first
// 4 KiB) when it is not valid UTF-8 or holds control characters. Links
// ("$>" events) are resolved one level and link to their target. Every response carries a Content-Security-Policy that
// allows only the UI's own static files, so even a rendering bug could not
// run injected script. Pages work without JavaScript; the script only
// refreshes the live parts of the subscription pages. The replay action is
// a POST protected against cross-site requests (http.CrossOriginProtection:
// Sec-Fetch-Site, else Origin against Host); a cross-origin POST gets 403.
package webui

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
	"github.com/orderstore/orders/eventstore/esdbnode/psub"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// EventLog is what the UI reads from the node's log (*eventlog.Log).
type EventLog interface {
	Head() uint64
	ReadAll(ctx context.Context, dir eventlog.Direction, from uint64, limit int) ([]eventlog.Record, error)
	ReadStream(ctx context.Context, stream string, dir eventlog.Direction, from uint64, limit int) ([]eventlog.Record, error)
	ReadEvent(ctx context.Context, stream string, revision uint64) (eventlog.Record, bool, error)
	Stream(ctx context.Context, stream string) (eventlog.StreamState, error)
	Streams(ctx context.Context, after string, limit int) ([]string, error)
}

// Subscriptions is what the UI needs of the persistent-subscription engine
// (*psub.Service).
type Subscriptions interface {
	Groups(ctx context.Context) ([]psub.GroupInfo, error)
	Group(ctx context.Context, stream, group string) (psub.GroupInfo, error)
	ParkedMessages(ctx context.Context, stream, group string, limit int) ([]psub.ParkedMessage, error)
	ReplayParkedMessages(ctx context.Context, stream, group string, stopAt int64) error
}

var (
	_ EventLog      = (*eventlog.Log)(nil)
	_ Subscriptions = (*psub.Service)(nil)
)

// Options configures the UI.
type Options struct {
	// Logger receives errors the UI could not show (nil: discard).
	Logger *slog.Logger
	// Now is the clock for "ago" columns (nil: time.Now).
	Now func() time.Time
	// Version is shown in the footer ("" for none).
	Version string
	// PageSize is the default number of events per page (0: 20).
	PageSize int
	// Refresh is how often subscription pages refresh themselves (0: 2s).
	Refresh time.Duration
	// IDPrefixes are the stream-name prefixes tried when a search is a bare id with no stream
	// of its own: searching "<id>" finds the stream "<prefix><id>" (nil: DefaultIDPrefixes).
	IDPrefixes []string
}

// DefaultIDPrefixes: the order store names an order's stream "order-<id>" and prints the id.
var DefaultIDPrefixes = []string{"order-"}

// Handler serves the UI. Create it with New.
type Handler struct {
	log  EventLog
	subs Subscriptions
	opts Options
	tmpl map[string]*template.Template
	mux  *http.ServeMux
}

var _ http.Handler = (*Handler)(nil)

// New returns the UI over a log and a persistent-subscription engine; both
// must be non-nil. It starts nothing.
func New(log EventLog, subs Subscriptions, opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 20
	}
	if opts.Refresh <= 0 {
		opts.Refresh = 2 * time.Second
	}
	if opts.IDPrefixes == nil {
		opts.IDPrefixes = DefaultIDPrefixes
	}
	h := &Handler{log: log, subs: subs, opts: opts, tmpl: parseTemplates(), mux: http.NewServeMux()}

	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	h.mux.Handle("GET /{$}", http.RedirectHandler("/web/streams", http.StatusFound))
	h.mux.Handle("GET /web/{$}", http.RedirectHandler("/web/streams", http.StatusFound))
	h.mux.Handle("GET /web/static/", http.StripPrefix("/web/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /web/streams", h.streams)
	h.mux.HandleFunc("GET /web/streams/{stream}", h.stream)
	h.mux.HandleFunc("GET /web/streams/{stream}/{revision}", h.event)
	h.mux.HandleFunc("GET /web/all", h.all)
	h.mux.HandleFunc("GET /web/all/{position}", h.allEvent)
	h.mux.HandleFunc("GET /web/subscriptions", h.subscriptions)
	h.mux.HandleFunc("GET /web/subscriptions/{stream}/{group}", h.subscription)
	h.mux.Handle("POST /web/subscriptions/{stream}/{group}/replay-parked",
		http.NewCrossOriginProtection().Handler(http.HandlerFunc(h.replayParked)))
	return h
}

// csp allows the UI's own static files and nothing else.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// ServeHTTP serves the UI.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

// streamURL is the UI path of a stream (name path-escaped).
func streamURL(stream string) string { return "/web/streams/" + url.PathEscape(stream) }

// eventURL is the UI path of one event of a stream.
func eventURL(stream string, revision uint64) string {
	return streamURL(stream) + "/" + formatUint(revision)
}

// groupURL is the UI path of a persistent subscription group.
func groupURL(stream, group string) string {
	return "/web/subscriptions/" + url.PathEscape(stream) + "/" + url.PathEscape(group)
}

// fail answers a request that could not be served with a page.
// A request its client cancelled or abandoned is logged at debug level
// only: any client can end its own request, and that is no error of the node.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, code int, msg string, err error) {
	if clientGone(r, err) {
		h.opts.Logger.Debug("webui: request ended by the client", "path", r.URL.Path, "err", err)
		code = statusClientClosed
	} else if err != nil && code >= 500 {
		h.opts.Logger.Error("webui: request failed", "path", r.URL.Path, "err", err)
	}
	if err != nil && code < 500 {
		msg += ": " + err.Error()
	}
	h.render(w, r, code, "error", pageData{Title: http.StatusText(code), Nav: "", Body: errorPage{Code: code, Message: msg}})
}

// statusClientClosed answers a request whose client has gone (nginx's 499):
// nobody reads it, but the access log of a proxy in front would.
const statusClientClosed = 499

// clientGone reports whether err comes from the request's client having
// cancelled it or gone away.
func clientGone(r *http.Request, err error) bool {
	if err == nil {
		return false
	}
	return r.Context().Err() != nil &&
		(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// errorCode maps a read error to an HTTP status.
func errorCode(err error) int {
	var del *eventlog.StreamDeletedError
	switch {
	case errors.Is(err, eventlog.ErrStreamNotFound), errors.Is(err, psub.ErrNotFound), errors.As(err, &del):
		return http.StatusNotFound
	case errors.Is(err, eventlog.ErrInvalid), errors.Is(err, psub.ErrInvalid), errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, eventlog.ErrClosed), errors.Is(err, psub.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
