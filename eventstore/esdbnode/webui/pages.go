package webui

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
	"github.com/orderstore/orders/eventstore/esdbnode/psub"
)

const (
	// recentScan bounds how many records of $all the recent-streams list reads.
	recentScan = 2000
	// recentMax is how many streams it shows.
	recentMax = 50
	// searchMax is how many prefix matches one search page shows.
	searchMax = 100
	// parkedMax is how many parked messages the group page shows.
	parkedMax = 50
)

// streamRow is one line of the streams page.
type streamRow struct {
	Name        string
	LastType    string
	LastTime    time.Time
	LastPos     uint64
	HasLast     bool
	Deleted     bool
	Tombstoned  bool
	NotFoundYet bool // searched for, never written
}

type streamsPage struct {
	Query     string
	System    bool
	Exact     *streamRow // the stream named exactly Query (or an id's stream, see Options.IDPrefixes)
	Rows      []streamRow
	MoreAfter string // next page of a search ("" none)
	Head      uint64
}

func (h *Handler) streams(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	p := streamsPage{Query: q.Get("q"), System: q.Get("sys") == "1", Head: h.log.Head()}
	if p.Query == "" {
		seen := map[string]bool{}
		from := uint64(math.MaxUint64)
		scanned := 0
		for scanned < recentScan && len(p.Rows) < recentMax {
			recs, err := h.log.ReadAll(ctx, eventlog.Backwards, from, 500)
			if err != nil {
				h.fail(w, r, errorCode(err), "cannot read $all", err)
				return
			}
			for _, rec := range recs {
				if seen[rec.Stream] || (!p.System && strings.HasPrefix(rec.Stream, "$")) || len(p.Rows) >= recentMax {
					continue
				}
				seen[rec.Stream] = true
				p.Rows = append(p.Rows, streamRow{Name: rec.Stream, LastType: rec.Type, LastTime: rec.Created, LastPos: rec.Position, HasLast: true})
			}
			scanned += len(recs)
			if len(recs) < 500 {
				break
			}
			from = recs[len(recs)-1].Position
		}
	} else {
		after := q.Get("after")
		if after == "" {
			st, err := h.log.Stream(ctx, p.Query)
			if err != nil && !errors.Is(err, eventlog.ErrInvalid) {
				h.fail(w, r, errorCode(err), "cannot read stream state", err)
				return
			}
			if err == nil {
				p.Exact = &streamRow{Name: p.Query, Deleted: st.SoftDeleted, Tombstoned: st.Tombstoned,
					NotFoundYet: st.LastRevision < 0 && !st.SoftDeleted && !st.Tombstoned}
			}
			// A bare id (what the application prints) finds its stream "<prefix><id>".
			if p.Exact == nil || p.Exact.NotFoundYet {
				for _, prefix := range h.opts.IDPrefixes {
					st, err := h.log.Stream(ctx, prefix+p.Query)
					if err == nil && (st.LastRevision >= 0 || st.SoftDeleted || st.Tombstoned) {
						p.Exact = &streamRow{Name: prefix + p.Query, Deleted: st.SoftDeleted, Tombstoned: st.Tombstoned}
						break
					}
				}
			}
			after = p.Query
		}
		names, err := h.log.Streams(ctx, after, searchMax)
		if err != nil {
			h.fail(w, r, errorCode(err), "cannot list streams", err)
			return
		}
		for _, n := range names {
			if !strings.HasPrefix(n, p.Query) {
				break
			}
			p.Rows = append(p.Rows, streamRow{Name: n})
		}
		if len(p.Rows) == searchMax {
			p.MoreAfter = p.Rows[len(p.Rows)-1].Name
		}
	}
	for i := range p.Rows {
		st, err := h.log.Stream(ctx, p.Rows[i].Name)
		if err != nil {
			continue // shown without its state
		}
		p.Rows[i].Deleted, p.Rows[i].Tombstoned = st.SoftDeleted, st.Tombstoned
	}
	title := "Streams"
	if p.Query != "" {
		title = "Streams starting with " + p.Query
	}
	h.render(w, r, http.StatusOK, "streams", pageData{Title: title, Nav: "streams", Body: p})
}

type streamPage struct {
	Name          string
	Open          bool // events shown expanded (default; ?open=0 collapses them)
	State         eventlog.StreamState
	Metadata      body
	MetaStream    string // "$$<name>", "" for a metastream
	Events        []eventView
	Count         int
	NewerFrom     string // "" none
	OlderFrom     string // "" none
	ShowingLatest bool
}

func (h *Handler) stream(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("stream")
	from, err := parseUintParam(r, "from", math.MaxUint64)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "bad page", err)
		return
	}
	count, err := h.count(r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "bad page", err)
		return
	}
	st, err := h.log.Stream(ctx, name)
	if err != nil {
		h.fail(w, r, errorCode(err), "cannot read stream "+strconv.Quote(name), err)
		return
	}
	if st.LastRevision < 0 && !st.Tombstoned && !st.SoftDeleted {
		h.fail(w, r, http.StatusNotFound, "stream "+strconv.Quote(name)+" not found", nil)
		return
	}
	p := streamPage{Name: name, State: st, Metadata: newBody(st.Metadata.Raw), Count: count,
		ShowingLatest: from >= uint64(max(st.LastRevision, 0)), Open: r.URL.Query().Get("open") != "0"}
	if !strings.HasPrefix(name, "$$") {
		p.MetaStream = "$$" + name
	}
	if !st.Tombstoned && !st.SoftDeleted {
		recs, err := h.log.ReadStream(ctx, name, eventlog.Backwards, from, count+1)
		if err != nil && !errors.Is(err, eventlog.ErrStreamNotFound) {
			h.fail(w, r, errorCode(err), "cannot read stream "+strconv.Quote(name), err)
			return
		}
		if len(recs) > count {
			p.OlderFrom = formatUint(recs[count].Revision)
			recs = recs[:count]
		}
		if len(recs) > 0 && recs[0].Revision < uint64(st.LastRevision) {
			p.NewerFrom = formatUint(min(recs[0].Revision+uint64(count), uint64(st.LastRevision)))
		}
		if p.Events, err = h.view(ctx, recs); err != nil {
			h.fail(w, r, errorCode(err), "cannot resolve links", err)
			return
		}
		for i := range p.Events {
			p.Events[i].Open = p.Open
		}
	}
	h.render(w, r, http.StatusOK, "stream", pageData{Title: "Stream " + name, Nav: "streams", Body: p})
}

type eventPage struct {
	Event    eventView
	Prev     string // URL of the previous event ("" none)
	Next     string
	FromAll  bool // looked up by position in $all
	InStream string
}

func (h *Handler) event(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("stream")
	rev, err := strconv.ParseUint(r.PathValue("revision"), 10, 64)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "bad revision", fmt.Errorf("%w: %q", ErrBadRequest, r.PathValue("revision")))
		return
	}
	recs, err := h.log.ReadStream(ctx, name, eventlog.Forwards, rev, 1)
	if err != nil {
		h.fail(w, r, errorCode(err), "cannot read stream "+strconv.Quote(name), err)
		return
	}
	if len(recs) == 0 || recs[0].Revision != rev {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("event %d of stream %q not found (never written, truncated or deleted)", rev, name), nil)
		return
	}
	views, err := h.view(ctx, recs)
	if err != nil {
		h.fail(w, r, errorCode(err), "cannot resolve link", err)
		return
	}
	p := eventPage{Event: views[0], InStream: streamURL(name)}
	if rev > 0 {
		p.Prev = eventURL(name, rev-1)
	}
	if st, err := h.log.Stream(ctx, name); err == nil && int64(rev) < st.LastRevision {
		p.Next = eventURL(name, rev+1)
	}
	h.render(w, r, http.StatusOK, "event", pageData{Title: fmt.Sprintf("Event %d@%s", rev, name), Nav: "streams", Body: p})
}

type allPage struct {
	Events      []eventView
	Head        uint64
	OlderBefore string
	NewerBefore string
	Open        bool // ?open=1: events shown expanded
	HideSystem  bool // ?sys=0: records whose type starts with "$" are hidden
	Hidden      int  // system records skipped on this page
	Query       func(open, hide bool, before string) string
}

// systemScan bounds how many records one $all page reads when hiding system records.
const systemScan = 5000

func (h *Handler) all(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	before, err := parseUintParam(r, "before", math.MaxUint64)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "bad page", err)
		return
	}
	count, err := h.count(r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "bad page", err)
		return
	}
	q := r.URL.Query()
	p := allPage{Head: h.log.Head(), Open: q.Get("open") == "1", HideSystem: q.Get("sys") == "0"}
	p.Query = func(open, hide bool, before string) string {
		v := url.Values{}
		if open {
			v.Set("open", "1")
		}
		if hide {
			v.Set("sys", "0")
		}
		if before != "" {
			v.Set("before", before)
		}
		if len(v) == 0 {
			return "/web/all"
		}
		return "/web/all?" + v.Encode()
	}
	// Read newest first, skipping system records when asked, until a page and one more.
	var recs []eventlog.Record
	from, scanned := before, 0
	for len(recs) <= count && scanned < systemScan {
		batch, err := h.log.ReadAll(ctx, eventlog.Backwards, from, count+1)
		if err != nil {
			h.fail(w, r, errorCode(err), "cannot read $all", err)
			return
		}
		for _, rec := range batch {
			if p.HideSystem && strings.HasPrefix(rec.Type, "$") {
				if len(recs) <= count {
					p.Hidden++
				}
				continue
			}
			if len(recs) <= count {
				recs = append(recs, rec)
			}
		}
		scanned += len(batch)
		if len(batch) < count+1 {
			break
		}
		from = batch[len(batch)-1].Position // Backwards reads positions < from
	}
	if len(recs) > count {
		recs = recs[:count]
		p.OlderBefore = formatUint(recs[count-1].Position)
	}
	if len(recs) > 0 && recs[0].Position < p.Head {
		p.NewerBefore = formatUint(recs[0].Position + uint64(count) + 1)
	}
	var err2 error
	if p.Events, err2 = h.view(ctx, recs); err2 != nil {
		h.fail(w, r, errorCode(err2), "cannot resolve links", err2)
		return
	}
	for i := range p.Events {
		p.Events[i].Open = p.Open
	}
	h.render(w, r, http.StatusOK, "all", pageData{Title: "$all", Nav: "all", Body: p})
}

func (h *Handler) allEvent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pos, err := strconv.ParseUint(r.PathValue("position"), 10, 64)
	if err != nil || pos == 0 {
		h.fail(w, r, http.StatusBadRequest, "bad position", fmt.Errorf("%w: %q", ErrBadRequest, r.PathValue("position")))
		return
	}
	recs, err := h.log.ReadAll(ctx, eventlog.Forwards, pos, 1)
	if err != nil {
		h.fail(w, r, errorCode(err), "cannot read $all", err)
		return
	}
	if len(recs) == 0 || recs[0].Position != pos {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("no record at position %d", pos), nil)
		return
	}
	views, err := h.view(ctx, recs)
	if err != nil {
		h.fail(w, r, errorCode(err), "cannot resolve link", err)
		return
	}
	p := eventPage{Event: views[0], FromAll: true, InStream: streamURL(recs[0].Stream)}
	if pos > 1 {
		p.Prev = "/web/all/" + formatUint(pos-1)
	}
	if pos < h.log.Head() {
		p.Next = "/web/all/" + formatUint(pos+1)
	}
	h.render(w, r, http.StatusOK, "event", pageData{Title: fmt.Sprintf("$all position %d", pos), Nav: "all", Body: p})
}

type subscriptionsPage struct {
	Groups []psub.GroupInfo
}

func (h *Handler) refreshSeconds() int { return max(1, int(h.opts.Refresh/time.Second)) }

func (h *Handler) subscriptions(w http.ResponseWriter, r *http.Request) {
	groups, err := h.subs.Groups(r.Context())
	if err != nil {
		h.fail(w, r, errorCode(err), "cannot list persistent subscriptions", err)
		return
	}
	h.render(w, r, http.StatusOK, "subscriptions", pageData{
		Title: "Persistent subscriptions", Nav: "subscriptions", Refresh: h.refreshSeconds(),
		Body: subscriptionsPage{Groups: groups},
	})
}

type parkedView struct {
	psub.ParkedMessage
	Event *eventView
}

type subscriptionPage struct {
	Group         psub.GroupInfo
	Parked        []parkedView
	ParkedMore    bool
	ReplayStarted bool
	ReplayURL     string
}

func (h *Handler) subscription(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	stream, group := r.PathValue("stream"), r.PathValue("group")
	gi, err := h.subs.Group(ctx, stream, group)
	if err != nil {
		h.fail(w, r, errorCode(err), fmt.Sprintf("persistent subscription %s::%s", stream, group), err)
		return
	}
	parked, err := h.subs.ParkedMessages(ctx, stream, group, parkedMax)
	if err != nil {
		h.fail(w, r, errorCode(err), "cannot read parked messages", err)
		return
	}
	p := subscriptionPage{
		Group: gi, ParkedMore: gi.Parked > int64(len(parked)),
		ReplayStarted: r.URL.Query().Get("replay") == "started",
		ReplayURL:     groupURL(stream, group) + "/replay-parked",
	}
	for _, pm := range parked {
		pv := parkedView{ParkedMessage: pm}
		if pm.Event != nil {
			ev := newEventView(*pm.Event)
			pv.Event = &ev
		}
		p.Parked = append(p.Parked, pv)
	}
	h.render(w, r, http.StatusOK, "subscription", pageData{
		Title: "Persistent subscription " + gi.Key, Nav: "subscriptions", Refresh: h.refreshSeconds(), Body: p,
	})
}

func (h *Handler) replayParked(w http.ResponseWriter, r *http.Request) {
	stream, group := r.PathValue("stream"), r.PathValue("group")
	stopAt := int64(-1)
	if err := r.ParseForm(); err != nil {
		// A body cut short or malformed is the client's fault; one too slow
		// to arrive (Limits.MinBodyRate) is a timeout.
		code := http.StatusBadRequest
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			code = http.StatusRequestTimeout
		}
		h.opts.Logger.Debug("webui: bad form", "path", r.URL.Path, "err", err)
		h.fail(w, r, code, "bad form", fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	if s := strings.TrimSpace(r.PostForm.Get("stopAt")); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			h.fail(w, r, http.StatusBadRequest, "bad stop-at", fmt.Errorf("%w: stopAt=%q", ErrBadRequest, s))
			return
		}
		stopAt = v
	}
	if err := h.subs.ReplayParkedMessages(r.Context(), stream, group, stopAt); err != nil {
		h.fail(w, r, errorCode(err), "cannot replay parked messages", err)
		return
	}
	http.Redirect(w, r, groupURL(stream, group)+"?replay=started", http.StatusSeeOther)
}
