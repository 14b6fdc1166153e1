package webui

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

// pages are the templates, each rendered inside layout.html.
var pages = []string{"streams", "stream", "event", "all", "subscriptions", "subscription", "error"}

func parseTemplates() map[string]*template.Template {
	funcs := template.FuncMap{
		"streamURL": streamURL,
		"eventURL":  eventURL,
		"groupURL":  groupURL,
		"allURL":    func(pos uint64) string { return "/web/all/" + formatUint(pos) },
		"time":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000Z") },
		"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
		"system":    func(s string) bool { return strings.HasPrefix(s, "$") },
		"dur":       func(d time.Duration) string { return d.String() },
	}
	out := make(map[string]*template.Template, len(pages))
	for _, p := range pages {
		t := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/body.html", "templates/"+p+".html"))
		out[p] = t
	}
	return out
}

// pageData is what layout.html renders; Body is the page's own data.
type pageData struct {
	Title   string
	Nav     string // the active navigation item
	Refresh int    // seconds between refreshes of the data-live parts; 0: none
	Version string
	Body    any
}

type errorPage struct {
	Code    int
	Message string
}

// render executes a page into a buffer first, so that a template error
// becomes a 500 rather than half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, code int, page string, d pageData) {
	d.Version = h.opts.Version
	var buf bytes.Buffer
	if err := h.tmpl[page].Execute(&buf, d); err != nil {
		h.opts.Logger.Error("webui: render", "page", page, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// body is event data or metadata ready to show.
type body struct {
	Size    int
	Empty   bool
	JSON    bool   // Text is indented JSON
	Text    string // JSON, or the bytes as text with invalid UTF-8 and control characters replaced by U+FFFD
	Hex     string // hex dump, when the bytes are not plain text
	HexCut  bool   // the hex dump shows only the first maxHex bytes
	Invalid bool   // not valid UTF-8
}

// maxHex bounds the hex dump of one body.
const maxHex = 4096

// newBody prepares b for display. Nothing here escapes: the templates do.
func newBody(b []byte) body {
	out := body{Size: len(b), Empty: len(b) == 0}
	if out.Empty {
		return out
	}
	valid := utf8.Valid(b)
	if valid && json.Valid(b) {
		var buf bytes.Buffer
		if err := json.Indent(&buf, b, "", "  "); err == nil {
			out.JSON, out.Text = true, buf.String()
			return out
		}
	}
	out.Invalid = !valid
	text := strings.ToValidUTF8(string(b), "\uFFFD")
	ctl := hasControl(text)
	if ctl {
		text = strings.Map(func(r rune) rune {
			if isHiddenControl(r) {
				return '\uFFFD'
			}
			return r
		}, text)
	}
	out.Text = text
	if !valid || ctl {
		n := min(len(b), maxHex)
		out.Hex, out.HexCut = hex.Dump(b[:n]), n < len(b)
	}
	return out
}

// hasControl: s holds control characters other than tab, CR and LF.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, isHiddenControl)
}

func isHiddenControl(r rune) bool {
	return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
}

// eventView is one record ready to show.
type eventView struct {
	Stream    string
	Revision  uint64
	Tombstone bool
	Position  uint64
	ID        string
	Type      string
	Created   time.Time
	IsJSON    bool
	Data      body
	Metadata  body
	Link      *linkView // the record is a link ("$>" with "<n>@<stream>" data)
	Open      bool      // shown expanded in a list of events
}

// URL is the event's own page (by stream and revision; tombstones by position).
func (e eventView) URL() string {
	if e.Tombstone {
		return "/web/all/" + formatUint(e.Position)
	}
	return eventURL(e.Stream, e.Revision)
}

// RevisionText is the revision as shown ("tombstone" for a tombstone).
func (e eventView) RevisionText() string {
	if e.Tombstone {
		return "tombstone"
	}
	return formatUint(e.Revision)
}

// linkView is a link's target, resolved when it is still readable.
type linkView struct {
	Stream   string
	Revision uint64
	Target   *eventView // nil: deleted, truncated or never written
}

func (l linkView) URL() string { return eventURL(l.Stream, l.Revision) }

func newEventView(r eventlog.Record) eventView {
	return eventView{
		Stream: r.Stream, Revision: r.Revision, Tombstone: r.Revision == eventlog.TombstoneRevision,
		Position: r.Position, ID: r.ID.String(), Type: r.Type, Created: r.Created, IsJSON: r.IsJSON,
		Data: newBody(r.Data), Metadata: newBody(r.Metadata),
	}
}

// parseLink reads the "<n>@<stream>" data of a link event.
func parseLink(data []byte) (string, uint64, bool) {
	num, stream, ok := strings.Cut(string(data), "@")
	if !ok || stream == "" {
		return "", 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return stream, n, true
}

// view turns records into views, resolving links one level deep.
func (h *Handler) view(ctx context.Context, recs []eventlog.Record) ([]eventView, error) {
	out := make([]eventView, 0, len(recs))
	for _, r := range recs {
		v := newEventView(r)
		if r.Type == eventlog.TypeLink {
			if stream, n, ok := parseLink(r.Data); ok {
				v.Link = &linkView{Stream: stream, Revision: n}
				target, found, err := h.log.ReadEvent(ctx, stream, n)
				if err != nil {
					return nil, err
				}
				if found {
					tv := newEventView(target)
					v.Link.Target = &tv
				}
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func formatUint(v uint64) string { return strconv.FormatUint(v, 10) }

// parseUintParam reads an optional non-negative integer query parameter.
func parseUintParam(r *http.Request, name string, def uint64) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q", ErrBadRequest, name, s)
	}
	return v, nil
}

// count reads the page size parameter, bounded to 1..500.
func (h *Handler) count(r *http.Request) (int, error) {
	v, err := parseUintParam(r, "count", uint64(h.opts.PageSize))
	if err != nil {
		return 0, err
	}
	return int(min(max(v, 1), 500)), nil
}
