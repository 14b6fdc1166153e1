package statusweb_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/orderstore/orders/cmd/orders/statusweb"
)

// fakeSource is a Source whose answer the test sets; hook, if set, runs on
// every read (to drive a burst from the page's own refreshes).
type fakeSource struct {
	mu   sync.Mutex
	subs []statusweb.SubscriberStatus
	err  error
	hook func(subs []statusweb.SubscriberStatus)
}

func (f *fakeSource) Subscribers(context.Context) ([]statusweb.SubscriberStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hook != nil {
		f.hook(f.subs)
	}
	if f.err != nil {
		return nil, f.err
	}
	out := make([]statusweb.SubscriberStatus, len(f.subs))
	copy(out, f.subs)
	return out, nil
}

func (f *fakeSource) update(fn func(subs []statusweb.SubscriberStatus)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.subs)
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func twoSubscribers() []statusweb.SubscriberStatus {
	return []statusweb.SubscriberStatus{
		{Name: "order-summaries", Kind: statusweb.KindProjection, Position: 90, Head: 100, Lag: 10, Handled: 90, Connected: true, LastHandledAt: t0},
		{Name: "paid-mail", Kind: statusweb.KindSender, Position: 100, Head: 100, Lag: 0, Handled: 12, Retried: 2, Parked: 1, Connected: true, LastHandledAt: t0.Add(-time.Hour),
			Unknown: map[string]uint64{"OrderRefunded": 3}},
	}
}

func newServer(t *testing.T, src statusweb.Source, c *clock, opts statusweb.Options) (*statusweb.Server, *httptest.Server) {
	t.Helper()
	opts.Now = c.Now
	s, err := statusweb.New(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

type health struct {
	Status  string   `json:"status"`
	Reasons []string `json:"reasons"`
}

func healthz(t *testing.T, base string) (int, health) {
	t.Helper()
	code, body := getBody(t, base+"/healthz")
	var h health
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("/healthz body %q: %v", body, err)
	}
	return code, h
}

// TestStallDetection walks one subscriber through the cases, checking the
// state after each step.
func TestStallDetection(t *testing.T) {
	const stall = 30 * time.Second
	type step struct {
		name    string
		advance time.Duration
		change  func(s *statusweb.SubscriberStatus)
		state   string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "up to date stays healthy however idle", steps: []step{
			{name: "first sight", change: func(s *statusweb.SubscriberStatus) { s.Lag = 0 }, state: "ok"},
			{name: "an hour idle", advance: time.Hour, state: "ok"},
		}},
		{name: "lagging and moving is catching up", steps: []step{
			{name: "first sight", state: "catching up"},
			{name: "lag falls", advance: stall, change: func(s *statusweb.SubscriberStatus) { s.Lag = 5 }, state: "catching up"},
			{name: "handled more, lag grew", advance: stall, change: func(s *statusweb.SubscriberStatus) { s.Lag = 50; s.Handled += 3 }, state: "catching up"},
			{name: "newer LastHandledAt", advance: stall, change: func(s *statusweb.SubscriberStatus) { s.LastHandledAt = t0.Add(3 * stall) }, state: "catching up"},
		}},
		{name: "lag without progress stalls after StallAfter", steps: []step{
			{name: "first sight", state: "catching up"},
			{name: "just before", advance: stall - time.Second, change: func(s *statusweb.SubscriberStatus) { s.Lag = 11 }, state: "catching up"},
			{name: "at StallAfter", advance: time.Second, change: func(s *statusweb.SubscriberStatus) { s.Lag = 12 }, state: "stalled"},
			{name: "resumes", advance: time.Second, change: func(s *statusweb.SubscriberStatus) { s.Lag = 4; s.Handled += 8 }, state: "catching up"},
			{name: "caught up", advance: time.Second, change: func(s *statusweb.SubscriberStatus) { s.Lag = 0 }, state: "ok"},
		}},
		{name: "a disconnected subscriber that lags stalls", steps: []step{
			{name: "first sight", change: func(s *statusweb.SubscriberStatus) { s.Connected = false }, state: "disconnected"},
			{name: "still down", advance: stall, state: "stalled"},
		}},
		{name: "an old LastHandledAt does not stall a subscriber seen for the first time", steps: []step{
			{name: "first sight", change: func(s *statusweb.SubscriberStatus) { s.LastHandledAt = t0.Add(-time.Hour) }, state: "catching up"},
		}},
		{name: "a clock ahead of ours counts as now", steps: []step{
			{name: "first sight", change: func(s *statusweb.SubscriberStatus) { s.LastHandledAt = t0.Add(time.Hour) }, state: "catching up"},
			{name: "stall time later", advance: stall, state: "stalled"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{now: t0}
			src := &fakeSource{subs: []statusweb.SubscriberStatus{
				{Name: "p", Kind: statusweb.KindProjection, Position: 90, Head: 100, Lag: 10, Handled: 90, Connected: true, LastHandledAt: t0},
			}}
			s, err := statusweb.New(src, statusweb.Options{StallAfter: stall, Now: c.Now})
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range tc.steps {
				c.Advance(st.advance)
				if st.change != nil {
					src.update(func(subs []statusweb.SubscriberStatus) { st.change(&subs[0]) })
				}
				rep := s.Check(t.Context())
				got := rep.Subscribers[0]
				if got.State != st.state {
					t.Fatalf("%s: state %q, want %q (%+v)", st.name, got.State, st.state, got)
				}
				if want := st.state != "stalled"; rep.Healthy != want {
					t.Fatalf("%s: healthy %v, want %v (%v)", st.name, rep.Healthy, want, rep.Reasons)
				}
				if got.Stalled != (got.Reason != "") {
					t.Fatalf("%s: stalled %v with reason %q", st.name, got.Stalled, got.Reason)
				}
			}
		})
	}
}

// TestHealthzFollowsAStoppedHandler: a projection whose handler stops (lag
// grows, nothing handled) makes /healthz 503 after StallAfter, and 200
// again once it handles events.
func TestHealthzFollowsAStoppedHandler(t *testing.T) {
	c := &clock{now: t0}
	src := &fakeSource{subs: twoSubscribers()}
	_, ts := newServer(t, src, c, statusweb.Options{StallAfter: 10 * time.Second})

	if code, h := healthz(t, ts.URL); code != http.StatusOK || h.Status != "ok" || len(h.Reasons) != 0 {
		t.Fatalf("start: %d %+v", code, h)
	}
	// The handler stops: new events arrive, none is handled.
	for range 10 {
		c.Advance(time.Second)
		src.update(func(s []statusweb.SubscriberStatus) { s[0].Head += 3; s[0].Lag += 3 })
		code, _ := healthz(t, ts.URL)
		if c.Now().Sub(t0) < 10*time.Second && code != http.StatusOK {
			t.Fatalf("unhealthy after only %v", c.Now().Sub(t0))
		}
	}
	code, h := healthz(t, ts.URL)
	if code != http.StatusServiceUnavailable || h.Status != "unhealthy" {
		t.Fatalf("stopped handler: %d %+v, want 503 unhealthy", code, h)
	}
	if len(h.Reasons) != 1 || !strings.Contains(h.Reasons[0], "order-summaries") || !strings.Contains(h.Reasons[0], "lag 40") {
		t.Fatalf("reasons %q", h.Reasons)
	}
	_, js := getBody(t, ts.URL+"/status.json")
	var rep struct {
		Healthy     bool `json:"healthy"`
		Subscribers []struct {
			Name    string `json:"name"`
			State   string `json:"state"`
			Stalled bool   `json:"stalled"`
		} `json:"subscribers"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Healthy || len(rep.Subscribers) != 2 || !rep.Subscribers[0].Stalled || rep.Subscribers[0].State != "stalled" {
		t.Fatalf("status.json %s", js)
	}

	// The handler resumes.
	c.Advance(time.Second)
	src.update(func(s []statusweb.SubscriberStatus) { s[0].Handled += 5; s[0].Lag -= 5; s[0].LastHandledAt = c.Now() })
	if code, h := healthz(t, ts.URL); code != http.StatusOK || h.Status != "ok" {
		t.Fatalf("resumed: %d %+v, want 200 ok", code, h)
	}
}

func TestHealthzSourceFailure(t *testing.T) {
	c := &clock{now: t0}
	src := &fakeSource{subs: twoSubscribers(), err: errors.New("sql: database is closed")}
	_, ts := newServer(t, src, c, statusweb.Options{})
	code, h := healthz(t, ts.URL)
	if code != http.StatusServiceUnavailable || len(h.Reasons) != 1 || !strings.Contains(h.Reasons[0], "database is closed") {
		t.Fatalf("%d %+v", code, h)
	}
}

func TestMetrics(t *testing.T) {
	c := &clock{now: t0.Add(90 * time.Second)}
	src := &fakeSource{subs: twoSubscribers()}
	s, ts := newServer(t, src, c, statusweb.Options{})
	m := s.Metrics()
	m.ObserveAppend(3 * time.Millisecond)
	m.ObserveAppend(7 * time.Millisecond)
	m.ObserveHandle("order-summaries", 2*time.Millisecond)
	var nilMetrics *statusweb.Metrics
	nilMetrics.ObserveAppend(time.Second) // a nil *Metrics is a no-op

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	value := func(family, name string) float64 {
		t.Helper()
		f := fams[family]
		if f == nil {
			t.Fatalf("no metric %s", family)
		}
		for _, mt := range f.GetMetric() {
			if name != "" && labelValue(mt, "name") != name {
				continue
			}
			switch {
			case mt.GetGauge() != nil:
				return mt.GetGauge().GetValue()
			case mt.GetCounter() != nil:
				return mt.GetCounter().GetValue()
			case mt.GetHistogram() != nil:
				return float64(mt.GetHistogram().GetSampleCount())
			}
		}
		t.Fatalf("no %s{name=%q}", family, name)
		return 0
	}
	tests := []struct {
		family, name string
		want         float64
	}{
		{"orders_subscriber_lag", "order-summaries", 10},
		{"orders_subscriber_lag", "paid-mail", 0},
		{"orders_subscriber_position", "order-summaries", 90},
		{"orders_subscriber_head", "order-summaries", 100},
		{"orders_subscriber_parked", "paid-mail", 1},
		{"orders_subscriber_connected", "paid-mail", 1},
		{"orders_subscriber_stalled", "order-summaries", 0},
		{"orders_subscriber_seconds_since_last_handled", "order-summaries", 90},
		{"orders_subscriber_handled_total", "order-summaries", 90},
		{"orders_subscriber_retried_total", "paid-mail", 2},
		{"orders_append_seconds", "", 2},
		{"orders_handle_seconds", "order-summaries", 1},
	}
	for _, tc := range tests {
		t.Run(tc.family+"/"+tc.name, func(t *testing.T) {
			if got := value(tc.family, tc.name); got != tc.want {
				t.Fatalf("%s{name=%q} = %v, want %v", tc.family, tc.name, got, tc.want)
			}
		})
	}
	unknown := fams["orders_subscriber_unknown_events_total"].GetMetric()
	if len(unknown) != 1 || labelValue(unknown[0], "name") != "paid-mail" || labelValue(unknown[0], "type") != "OrderRefunded" ||
		unknown[0].GetCounter().GetValue() != 3 {
		t.Errorf("orders_subscriber_unknown_events_total = %v, want paid-mail's 3 OrderRefunded only", unknown)
	}
	if fams["orders_append_seconds"].GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("orders_append_seconds is %v, want a histogram", fams["orders_append_seconds"].GetType())
	}
	if fams["go_goroutines"] == nil {
		t.Errorf("the default registry lacks the Go collector")
	}
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	src := &fakeSource{}
	if _, err := statusweb.New(src, statusweb.Options{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := statusweb.New(src, statusweb.Options{Registry: reg}); err == nil {
		t.Fatal("a second Server on the same registry registered its metrics twice")
	}
}

func TestStatusPageEscapes(t *testing.T) {
	c := &clock{now: t0}
	src := &fakeSource{subs: []statusweb.SubscriberStatus{{
		Name: `<script>window.__xss=1</script>`, Kind: statusweb.KindSender, Lag: 1, Connected: true,
		LastError: `smtp: 550 <img src=x onerror="window.__xss=2">`,
	}}}
	_, ts := newServer(t, src, c, statusweb.Options{})
	code, body := getBody(t, ts.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{"&lt;script&gt;window.__xss=1&lt;/script&gt;", "&lt;img src=x onerror=&#34;window.__xss=2&#34;&gt;", `name="viewport"`, `http-equiv="refresh"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	for _, bad := range []string{"<script>window", "<img src=x"} {
		if strings.Contains(body, bad) {
			t.Errorf("page holds %q unescaped", bad)
		}
	}
}
