package notify_test

import (
	"bytes"
	"crypto/tls"
	"database/sql"
	"io"
	"log"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	smtp "github.com/emersion/go-smtp"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/orderstore/orders/internal/testutil/pgtest"
	"github.com/orderstore/orders/subscribers/notify"
)

// received is one message as the test SMTP server got it.
type received struct {
	MessageID string // without angle brackets
	From      string // envelope
	To        []string
	Subject   string
	OrderID   string
	EventID   string
	Body      string // decoded
	TLS       bool
}

// smtpServer is a real SMTP server (github.com/emersion/go-smtp) on a loopback port, whose
// behaviour tests switch at run time.
type smtpServer struct {
	addr string

	mu         sync.Mutex
	srv        *smtp.Server
	ln         net.Listener
	msgs       []received
	changed    chan struct{} // closed and replaced on every change
	rejectRcpt map[string]bool
	tempFail   bool          // answer 421 to EHLO
	gate       chan struct{} // when non-nil, sessions wait until it is closed
	sessions   int           // sessions started
	tlsConfig  *tls.Config   // offered with STARTTLS when set
}

// startSMTP starts a server on 127.0.0.1:0, stopped at cleanup. With a TLS config it offers
// STARTTLS.
func startSMTP(t testing.TB, tlsConfig ...*tls.Config) *smtpServer {
	t.Helper()
	s := &smtpServer{changed: make(chan struct{}), rejectRcpt: map[string]bool{}}
	if len(tlsConfig) > 0 {
		s.tlsConfig = tlsConfig[0]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(func() {
		s.mu.Lock()
		if s.gate != nil {
			close(s.gate)
			s.gate = nil
		}
		s.mu.Unlock()
		s.Stop()
	})
	return s
}

func (s *smtpServer) URL() string { return "smtp://" + s.addr }

func (s *smtpServer) serve(ln net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLSConfig = s.tlsConfig
	s.mu.Lock()
	s.srv, s.ln = srv, ln
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Stop closes the listener and every connection: clients get "connection refused".
func (s *smtpServer) Stop() {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if ln != nil {
		// Closed here too: srv.Close misses a listener that Serve has not registered yet.
		_ = ln.Close()
	}
	if srv != nil {
		_ = srv.Close()
	}
}

// Restart listens again on the same address.
func (s *smtpServer) Restart(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatalf("smtp restart: %v", err)
	}
	s.serve(ln)
}

func (s *smtpServer) SetRejectRcpt(addr string, reject bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectRcpt[addr] = reject
}

func (s *smtpServer) SetTempFail(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tempFail = v
}

// Hold makes new sessions wait until Release.
func (s *smtpServer) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
}

func (s *smtpServer) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

func (s *smtpServer) bump() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *smtpServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.sessions++
	s.bump()
	gate, temp := s.gate, s.tempFail
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if temp {
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	_, isTLS := c.TLSConnectionState()
	return &session{s: s, tls: isTLS}, nil
}

// Messages returns a copy of what was received.
func (s *smtpServer) Messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

// Sessions is the number of sessions started (EHLO received).
func (s *smtpServer) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// WaitFor waits until cond holds on the received messages, failing the test after timeout.
func (s *smtpServer) WaitFor(t testing.TB, timeout time.Duration, what string, cond func(msgs []received, sessions int) bool) []received {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		msgs := append([]received(nil), s.msgs...)
		sessions := s.sessions
		ch := s.changed
		s.mu.Unlock()
		if cond(msgs, sessions) {
			return msgs
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("smtp: timed out after %v waiting for %s (have %d messages, %d sessions)", timeout, what, len(msgs), sessions)
		}
	}
}

type session struct {
	s    *smtpServer
	tls  bool
	from string
	to   []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	reject := x.s.rejectRcpt[to]
	x.s.mu.Unlock()
	if reject {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: "bad message: " + err.Error()}
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		return err
	}
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			return err
		}
	}
	dec := new(mime.WordDecoder)
	rec := received{
		MessageID: strings.Trim(m.Header.Get("Message-ID"), "<>"),
		From:      x.from,
		To:        append([]string(nil), x.to...),
		Subject:   decodeHeader(dec, m.Header.Get("Subject")),
		OrderID:   m.Header.Get("X-Order-ID"),
		EventID:   m.Header.Get("X-Event-ID"),
		Body:      strings.ReplaceAll(string(body), "\r\n", "\n"),
		TLS:       x.tls,
	}
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, rec)
	x.s.bump()
	x.s.mu.Unlock()
	return nil
}

func postgresURL() string { return pgtest.URL() }

// backend is a kind of read-model database holding the sent-log.
type backend struct {
	name   string
	newURL func(t testing.TB) string
}

var (
	sqliteBackend   = backend{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "readmodels.db") }}
	postgresBackend = backend{"postgres", newPostgresSchema}
	backends        = []backend{sqliteBackend, postgresBackend}
)

// newPostgresSchema is a fresh schema of the test PostgreSQL, dropped at cleanup.
func newPostgresSchema(t testing.TB) string { return pgtest.Schema(t) }

// sqlDB opens the database at url: a PostgreSQL URL, else a SQLite file (WAL, with a busy
// timeout, since a child process may write it at the same time).
func sqlDB(url string) (*sql.DB, error) {
	if strings.HasPrefix(url, "postgres") {
		return sql.Open("pgx", url)
	}
	return sql.Open("sqlite", "file:"+url+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
}

// openDB opens the database at url (see sqlDB), closed at cleanup.
func openDB(t testing.TB, url string) *sql.DB {
	t.Helper()
	db, err := sqlDB(url)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// openSentLog opens the sent-log in the database at url.
func openSentLog(t testing.TB, url string) *notify.SQLSentLog {
	t.Helper()
	db := openDB(t, url)
	l, err := notify.OpenSentLog(t.Context(), db, db)
	if err != nil {
		t.Fatalf("open sent-log %s: %v", url, err)
	}
	return l
}

// sentCount counts the sent-log's records, straight from its table.
func sentCount(t testing.TB, url string) int {
	t.Helper()
	var n int
	if err := openDB(t, url).QueryRowContext(t.Context(), `SELECT count(*) FROM sent_messages`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitUntil polls cond (there is no event to wait on) until it holds or timeout passes.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok && err == nil {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, last)
		}
		<-tick.C
	}
}

func decodeHeader(dec *mime.WordDecoder, s string) string {
	if d, err := dec.DecodeHeader(s); err == nil {
		return d
	}
	return s
}
