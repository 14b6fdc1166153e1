package hostile

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

// waitTimeout bounds every wait in these tests; the limits under test are
// far shorter (testLimits), so a bound that does not trip fails the test.
const waitTimeout = 10 * time.Second

// testLimits are short enough that every bound trips well within waitTimeout.
var testLimits = esdbnode.Limits{
	PrefaceTimeout:    300 * time.Millisecond,
	ReadHeaderTimeout: 300 * time.Millisecond,
	BodyRateGrace:     300 * time.Millisecond,
	MaxHeaderBytes:    8 << 10,
}

// logRecorder keeps the level and message of every log record.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
	errs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, b.String())
	if rec.Level >= slog.LevelError {
		r.errs = append(r.errs, b.String())
	}
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// node is a running node under attack and an official client of it.
type node struct {
	srv    *esdbnode.Server
	client *esdb.Client
	log    *logRecorder
}

// start runs a node with lim and checks at cleanup that nothing was logged
// as an error.
func start(t *testing.T, lim esdbnode.Limits) *node {
	t.Helper()
	return startWith(t, esdbnode.Config{Limits: lim}, "")
}

// startWith runs a node with cfg (address, data directory and logger set
// here); url, if not "", is the connection string of the official client.
func startWith(t *testing.T, cfg esdbnode.Config, url string) *node {
	t.Helper()
	rec := &logRecorder{}
	cfg.Addr, cfg.DataDir, cfg.Logger = "127.0.0.1:0", t.TempDir(), slog.New(rec)
	srv, err := esdbnode.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if url == "" {
		url = srv.ConnectionString()
	} else {
		url = strings.ReplaceAll(url, "{addr}", srv.Addr())
	}
	ccfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		t.Fatal(err)
	}
	ccfg.Logger = esdb.NoopLogging()
	client, err := esdb.NewClient(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
		if errs := rec.errors(); len(errs) > 0 {
			t.Errorf("a hostile client wrote %d ERROR lines into the node's log:\n%s", len(errs), strings.Join(errs, "\n"))
		}
	})
	return &node{srv: srv, client: client, log: rec}
}

// serves proves the node still serves the official client: an append to a
// fresh stream, read back.
func (n *node) serves(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	stream := "normal-" + uuid.NewString()
	ev := esdb.EventData{EventType: "Probe", ContentType: esdb.ContentTypeJson, Data: []byte(`{"ok":true}`)}
	if _, err := n.client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, ev); err != nil {
		t.Fatalf("the node no longer serves a normal client: append: %v", err)
	}
	rs, err := n.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{}, 10)
	if err != nil {
		t.Fatalf("the node no longer serves a normal client: read: %v", err)
	}
	defer rs.Close()
	if _, err := rs.Recv(); err != nil {
		t.Fatalf("the node no longer serves a normal client: read: %v", err)
	}
}

// head is the position of the last record of $all.
func (n *node) head(t *testing.T) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	rs, err := n.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return ev.OriginalEvent().Position.Commit
}

// dial opens a raw TCP connection to the node.
func dial(t *testing.T, n *node) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", n.srv.Addr(), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// closedByNode waits for the node to close conn, returning what it sent
// first. It fails the test if the connection is still open after waitTimeout.
func closedByNode(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the node still holds the connection after %v (got %q)", waitTimeout, got)
	}
	return got // EOF or a reset: closed either way
}

func TestSilentConnectionsAreDropped(t *testing.T) {
	n := start(t, testLimits)
	conns := make([]net.Conn, 50)
	for i := range conns {
		conns[i] = dial(t, n)
	}
	n.serves(t) // during
	for _, c := range conns {
		if got := closedByNode(t, c); len(got) != 0 {
			t.Fatalf("silent connection got %q", got)
		}
	}
	n.serves(t) // after
}

func TestSlowHeadersAreDropped(t *testing.T) {
	n := start(t, testLimits)
	conns := make([]net.Conn, 20)
	for i := range conns {
		conns[i] = dial(t, n)
		if _, err := io.WriteString(conns[i], "GET /web/streams HTTP/1.1\r\nHost: node\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	n.serves(t)
	for _, c := range conns {
		closedByNode(t, c)
	}
	n.serves(t)
}

// A POST whose body never arrives was held forever (issue 16, finding 1).
func TestBodyThatNeverArrivesIsDropped(t *testing.T) {
	n := start(t, testLimits)
	conns := make([]net.Conn, 50)
	for i := range conns {
		conns[i] = dial(t, n)
		req := "POST /web/subscriptions/s/g/replay-parked HTTP/1.1\r\nHost: node\r\n" +
			"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
		if _, err := io.WriteString(conns[i], req); err != nil {
			t.Fatal(err)
		}
	}
	n.serves(t)
	for _, c := range conns {
		got := closedByNode(t, c)
		if !bytes.HasPrefix(got, []byte("HTTP/1.1 408 ")) {
			t.Fatalf("a body that never arrives: got %q, want 408 then close", firstLine(got))
		}
	}
	n.serves(t)
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	return string(line)
}

// response sends a raw HTTP/1.1 request, closes the write side and returns
// the status line of the answer.
func response(t *testing.T, n *node, req string) string {
	t.Helper()
	conn := dial(t, n)
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	return firstLine(closedByNode(t, conn))
}

// Clients that hang up were logged as the node's errors, and a short body
// got 503 (issue 16, finding 2). The cleanup of start fails the test on any
// ERROR line.
func TestClientThatGoesAwayIsNotAnError(t *testing.T) {
	n := start(t, esdbnode.Limits{})
	const path = "/web/subscriptions/s/g/replay-parked"
	for i := range 20 {
		t.Run(fmt.Sprint("short body ", i), func(t *testing.T) {
			got := response(t, n, "POST "+path+" HTTP/1.1\r\nHost: node\r\n"+
				"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nstopAt=1")
			if !strings.HasPrefix(got, "HTTP/1.1 400 ") {
				t.Fatalf("a body shorter than its Content-Length: got %q, want 400", got)
			}
		})
		t.Run(fmt.Sprint("unknown group then close ", i), func(t *testing.T) {
			got := response(t, n, "POST "+path+" HTTP/1.1\r\nHost: node\r\n"+
				"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 8\r\n\r\nstopAt=1")
			if !strings.HasPrefix(got, "HTTP/1.1 404 ") {
				t.Fatalf("an unknown group, then close: got %q, want 404", got)
			}
		})
	}
	t.Run("malformed form", func(t *testing.T) {
		got := response(t, n, "POST "+path+" HTTP/1.1\r\nHost: node\r\n"+
			"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nstopAt=%z")
		if !strings.HasPrefix(got, "HTTP/1.1 400 ") {
			t.Fatalf("a malformed form: got %q, want 400", got)
		}
	})
	t.Run("grpc calls cancelled by the client", func(t *testing.T) {
		for range 20 {
			ctx, cancel := context.WithCancel(t.Context())
			sub, err := n.client.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cancel()
			_ = sub.Close()
			rs, err := n.client.ReadAll(ctx, esdb.ReadAllOptions{}, 10)
			if err == nil {
				rs.Close()
			}
		}
	})
	n.serves(t)
}

func TestGarbage(t *testing.T) {
	n := start(t, testLimits)
	cases := []struct {
		name, send string
		want       string // prefix of the answer; "" for a silent close
	}{
		{"raw bytes", "\x00\x01\x02garbage\xff\xfe\r\n\r\n", "HTTP/1.1 400 "},
		{"http/2 preface then garbage", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + strings.Repeat("\xff\x00garbage", 100), ""},
		{"http/2 preface then a huge frame header", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\x04\x00\x00\x00\x00\x00", ""},
		{"oversized headers", "GET / HTTP/1.1\r\nHost: node\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", "HTTP/1.1 431 "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn := dial(t, n)
			if _, err := io.WriteString(conn, tc.send); err != nil {
				t.Fatal(err)
			}
			n.serves(t)
			got := closedByNode(t, conn)
			if tc.want != "" && !bytes.HasPrefix(got, []byte(tc.want)) {
				t.Fatalf("got %q, want %q…", firstLine(got), tc.want)
			}
			n.serves(t)
		})
	}
}

func TestConnectionCap(t *testing.T) {
	lim := testLimits
	lim.MaxConnections = 10
	lim.PrefaceTimeout = time.Minute // the flood must hold its places
	n := start(t, lim)
	n.serves(t) // the normal client holds one connection from here on
	var flood []net.Conn
	for range lim.MaxConnections - 1 {
		flood = append(flood, dial(t, n))
	}
	// The node counts a connection once it has accepted it; a connection
	// past the cap is answered and closed at once.
	var refused []byte
	for range 100 {
		c := dial(t, n)
		if err := c.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
			t.Fatal(err)
		}
		got, _ := bufio.NewReader(c).ReadString('\n')
		if got != "" {
			refused = []byte(got)
			break
		}
	}
	if !strings.HasPrefix(string(refused), "HTTP/1.1 503 ") {
		t.Fatalf("connection past the cap: got %q, want 503", refused)
	}
	n.serves(t) // during: the normal client's connection is not affected
	for _, c := range flood {
		_ = c.Close()
	}
	// After: new connections are accepted again once the flood has gone
	// (the node notices the closes asynchronously, so retry).
	deadline := time.Now().Add(waitTimeout)
	for {
		resp, err := httpGet(t, n, "/health/live")
		if err == nil && resp == http.StatusNoContent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new connection accepted after the flood ended: %d %v", resp, err)
		}
	}
	n.serves(t)
}

func httpGet(t *testing.T, n *node, path string) (int, error) {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.srv.Addr()+path, nil)
	if err != nil {
		return 0, err
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// rawAppend appends one event of size bytes of data through a bare gRPC
// client, returning the call's error and trailers.
func rawAppend(t *testing.T, n *node, stream string, size int) (error, metadata.MD) {
	t.Helper()
	conn, err := grpc.NewClient(n.srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	var trailer metadata.MD
	call, err := streams.NewStreamsClient(conn).Append(ctx, grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	err = call.Send(&streams.AppendReq{Content: &streams.AppendReq_Options_{Options: &streams.AppendReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(stream)},
		ExpectedStreamRevision: &streams.AppendReq_Options_Any{Any: &shared.Empty{}},
	}}})
	if err == nil {
		err = call.Send(&streams.AppendReq{Content: &streams.AppendReq_ProposedMessage_{ProposedMessage: &streams.AppendReq_ProposedMessage{
			Id:       &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
			Metadata: map[string]string{"type": "Big", "content-type": "application/octet-stream"},
			Data:     make([]byte, size),
		}}})
	}
	// A failed Send (the node ended the call) leaves the status to CloseAndRecv.
	_, err = call.CloseAndRecv()
	return err, trailer
}

// An append of one event between 4 MiB and 16 MiB got ResourceExhausted
// without the exception trailer (issue 16, finding 3).
func TestOversizedAppend(t *testing.T) {
	n := start(t, esdbnode.Limits{})
	const mib = 1 << 20
	cases := []struct {
		name string
		size int
		code codes.Code
	}{
		{"1 MiB + 1", mib + 1, codes.InvalidArgument},
		{"4 MiB + 1", 4*mib + 1, codes.InvalidArgument},
		{"8 MiB", 8 * mib, codes.InvalidArgument},
		{"just under the message limit", esdbnode.MaxReceiveMessageSize - 200, codes.InvalidArgument},
		{"16 MiB", 16 * mib, codes.ResourceExhausted},
		{"17 MiB", 17 * mib, codes.ResourceExhausted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := n.head(t)
			stream := "big-" + uuid.NewString()
			err, tr := rawAppend(t, n, stream, tc.size)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("append of %d bytes: %v, want %v", tc.size, err, tc.code)
			}
			if tc.code == codes.InvalidArgument {
				if got := tr.Get("exception"); len(got) != 1 || got[0] != "maximum-append-size-exceeded" {
					t.Fatalf("exception trailer %q, want maximum-append-size-exceeded", got)
				}
				if got := tr.Get("maximum-append-size"); len(got) != 1 || got[0] != "1048576" {
					t.Fatalf("maximum-append-size trailer %q, want 1048576", got)
				}
			}
			if after := n.head(t); after != before {
				t.Fatalf("a rejected append moved the head of $all from %d to %d", before, after)
			}
			n.serves(t)
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			rs, err := n.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{}, 1)
			if err == nil {
				_, err = rs.Recv()
				rs.Close()
			}
			var esErr *esdb.Error
			if !errors.As(err, &esErr) || esErr.Code() != esdb.ErrorCodeResourceNotFound {
				t.Fatalf("rejected append wrote its stream: read: %v", err)
			}
		})
	}
}

// A secure node drops connections that send garbage instead of a TLS
// handshake, stay silent, or stop mid-handshake.
func TestTLSGarbageAndSilence(t *testing.T) {
	certs := esdbnodetest.NewCerts(t)
	cfg := esdbnode.Config{
		Limits:          testLimits,
		CertificateFile: certs.CertFile, CertificatePrivateKeyFile: certs.KeyFile,
		TrustedRootCertificatesPath: certs.RootsDir,
	}
	n := startWith(t, cfg, "esdb://admin:changeit@{addr}?tls=true&tlsCAFile="+certs.CAFile)
	sends := map[string]string{
		"silent":                  "",
		"plain HTTP":              "GET / HTTP/1.1\r\nHost: node\r\n\r\n",
		"HTTP/2 preface in clear": "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"half a ClientHello":      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
		"garbage":                 strings.Repeat("\xff\x00", 512),
	}
	var conns []net.Conn
	for _, send := range sends {
		c := dial(t, n)
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	n.serves(t)
	for _, c := range conns {
		closedByNode(t, c)
	}
	n.serves(t)
}
