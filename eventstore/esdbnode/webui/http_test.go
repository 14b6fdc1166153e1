package webui_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, rawURL string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", rawURL, err)
	}
	return resp, string(b)
}

func streamPath(name string) string { return "/web/streams/" + url.PathEscape(name) }

func TestPages(t *testing.T) {
	f := newFixture(t)
	f.park(t)

	tests := []struct {
		name     string
		path     string
		code     int
		location string   // expected Location header (redirects)
		ctype    string   // expected Content-Type prefix
		contains []string // substrings of the body
		absent   []string // must not appear in the body
	}{
		{name: "root redirects", path: "/", code: http.StatusFound, location: "/web/streams"},
		{name: "live", path: "/health/live", code: http.StatusNoContent},
		{name: "info", path: "/info", code: http.StatusOK, ctype: "application/json", contains: []string{`"esVersion"`}},
		{name: "static css", path: "/web/static/style.css", code: http.StatusOK, ctype: "text/css"},
		{name: "static js", path: "/web/static/app.js", code: http.StatusOK, ctype: "text/javascript"},
		{
			name: "recent streams", path: "/web/streams", code: http.StatusOK, ctype: "text/html",
			contains: []string{f.order, "links-1", `name="viewport"`},
			absent:   []string{"$persistentSubscriptionConfig"},
		},
		{name: "recent with system streams", path: "/web/streams?sys=1", code: http.StatusOK, contains: []string{"$persistentSubscriptionConfig"}},
		{name: "search by prefix", path: "/web/streams?q=order-", code: http.StatusOK, contains: []string{f.order}, absent: []string{">links-1<"}},
		{name: "search exact", path: "/web/streams?q=" + url.QueryEscape(f.order), code: http.StatusOK, contains: []string{`id="exact"`}},
		{
			name: "order stream", path: streamPath(f.order), code: http.StatusOK,
			contains: []string{"OrderPaid", "OrderPlaced", "&#34;paymentRef&#34;: &#34;pay-77&#34;", "$$" + f.order},
		},
		{
			name: "order event", path: streamPath(f.order) + "/0", code: http.StatusOK,
			contains: []string{"OrderPlaced", "&#34;orderId&#34;: &#34;o-1&#34;", "&#34;$correlationId&#34;: &#34;c-1&#34;", `rel="next"`},
		},
		{name: "event past the end", path: streamPath(f.order) + "/9", code: http.StatusNotFound},
		{name: "bad revision", path: streamPath(f.order) + "/x", code: http.StatusBadRequest},
		{name: "bad page", path: streamPath(f.order) + "?from=-1", code: http.StatusBadRequest},
		{name: "unknown stream", path: streamPath("nope"), code: http.StatusNotFound},
		{
			name: "link resolved", path: streamPath(f.links) + "/0", code: http.StatusOK,
			contains: []string{"Resolved event", `href="` + streamPath(f.order) + `/0"`, "&#34;orderId&#34;"},
		},
		{
			name: "xss escaped", path: streamPath(f.xss) + "/0", code: http.StatusOK,
			contains: []string{"&lt;script&gt;window.__xss=1&lt;/script&gt;", "&lt;img src=x onerror=&#34;window.__xss=3&#34;&gt;"},
			absent:   []string{"<script>window", "<img src=x"},
		},
		{name: "xss in a stream list", path: streamPath(f.xss), code: http.StatusOK, absent: []string{"<script>window", "<img src=x"}},
		{
			name: "broken utf-8", path: streamPath(f.binary) + "/0", code: http.StatusOK,
			contains: []string{"not valid UTF-8", "\uFFFD&lt;script&gt;window.__xss=4&lt;/script&gt;\uFFFD\uFFFD caf\uFFFD", "Hex dump", "ff fe 3c 73"},
			absent:   []string{"<script>window", "\xff", "\x00"},
		},
		{name: "metastream", path: streamPath("$$" + f.soft), code: http.StatusOK, contains: []string{"$metadata", "&#34;$tb&#34;: 9223372036854775807"}},
		{name: "soft deleted", path: streamPath(f.soft), code: http.StatusOK, contains: []string{"is deleted"}},
		{name: "tombstoned", path: streamPath(f.hard), code: http.StatusOK, contains: []string{"is tombstoned"}},
		{name: "name with slash, dollar and colons", path: streamPath(f.weird), code: http.StatusOK, contains: []string{"tenant/a$b::c", "Weird"}},
		{name: "$all", path: "/web/all", code: http.StatusOK, contains: []string{"$streamDeleted", "OrderPaid"}},
		{name: "$all paged", path: "/web/all?before=3&count=1", code: http.StatusOK, contains: []string{`rel="next"`, `rel="prev"`}},
		{name: "$all by position", path: "/web/all/1", code: http.StatusOK, contains: []string{"$user"}},
		{name: "$all past the head", path: "/web/all/999999", code: http.StatusNotFound},
		{
			name: "subscriptions", path: "/web/subscriptions", code: http.StatusOK,
			contains: []string{"parking-1", `href="/web/subscriptions/parking-1/g%2F1"`, `data-refresh="2"`},
		},
		{
			name: "subscription", path: "/web/subscriptions/parking-1/" + url.PathEscape(f.group), code: http.StatusOK,
			contains: []string{`<dd id="parked-count">3</dd>`, "PaymentFailed", "payment provider said &lt;b&gt;no&lt;/b&gt;", "RoundRobin", `<dd id="connections">1</dd>`},
			absent:   []string{"<b>no</b>"},
		},
		{name: "unknown subscription", path: "/web/subscriptions/parking-1/nope", code: http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, f.base+tc.path, nil)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d; body:\n%s", resp.StatusCode, tc.code, body)
			}
			if tc.location != "" && resp.Header.Get("Location") != tc.location {
				t.Errorf("Location %q, want %q", resp.Header.Get("Location"), tc.location)
			}
			if tc.ctype != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
				t.Errorf("Content-Type %q, want %s", resp.Header.Get("Content-Type"), tc.ctype)
			}
			if strings.HasPrefix(tc.path, "/web/") && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
				t.Errorf("no Content-Security-Policy on %s", tc.path)
			}
			for _, s := range tc.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q; body:\n%s", s, body)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(body, s) {
					t.Errorf("body holds %q", s)
				}
			}
		})
	}
}

func TestInfoIsJSON(t *testing.T) {
	f := newFixture(t)
	_, body := get(t, f.base+"/info", nil)
	var v struct {
		ESVersion string `json:"esVersion"`
		State     string `json:"state"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.ESVersion == "" || v.State != "leader" {
		t.Fatalf("/info = %q (%v)", body, err)
	}
}

func TestReplayParkedPost(t *testing.T) {
	f := newFixture(t)
	f.park(t)
	replay := f.base + "/web/subscriptions/parking-1/" + url.PathEscape(f.group) + "/replay-parked"

	post := func(t *testing.T, target string, header http.Header) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, target, strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp
	}
	parked := func(t *testing.T) string {
		_, body := get(t, f.base+"/web/subscriptions/parking-1/"+url.PathEscape(f.group), nil)
		_, rest, _ := strings.Cut(body, `<dd id="parked-count">`)
		n, _, _ := strings.Cut(rest, "<")
		return n
	}

	t.Run("cross-site post refused", func(t *testing.T) {
		for _, h := range []http.Header{
			{"Origin": {"http://evil.example"}},
			{"Sec-Fetch-Site": {"cross-site"}},
		} {
			if resp := post(t, replay, h); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%v: status %d, want 403", h, resp.StatusCode)
			}
		}
		if got := parked(t); got != fmt.Sprint(f.parked) {
			t.Fatalf("parked = %s after refused replays, want %d", got, f.parked)
		}
	})
	t.Run("unknown group", func(t *testing.T) {
		resp := post(t, f.base+"/web/subscriptions/parking-1/nope/replay-parked", http.Header{"Origin": {f.base}})
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d, want 404", resp.StatusCode)
		}
	})
	t.Run("same-origin post replays", func(t *testing.T) {
		resp := post(t, replay, http.Header{"Origin": {f.base}, "Sec-Fetch-Site": {"same-origin"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d, want 303", resp.StatusCode)
		}
		if loc := resp.Header.Get("Location"); !strings.HasSuffix(loc, "?replay=started") {
			t.Fatalf("Location %q", loc)
		}
		waitFor(t, 15*time.Second, "parked count 0", func() (bool, error) { return parked(t) == "0", nil })
	})
}
