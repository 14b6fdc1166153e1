// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) on a loopback
// port for tests of the e-mail sender, in its package and through serve.
//
// Contract: Start listens on 127.0.0.1:0 and stops at the test's cleanup. Every message
// received is parsed (headers, quoted-printable body) into a Message; WaitFor blocks until a
// condition on the messages and the session count holds, woken by each change (no polling).
// Faults are switched at run time: SetTempFail (421 at the greeting), SetRejectRcpt (550 for
// one recipient), Hold and Release (sessions wait), Stop and Restart (connection refused,
// then the same address again). With a TLS config the server offers STARTTLS.
package smtptest

import (
	"bytes"
	"crypto/tls"
	"io"
	"log"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one message as the server got it.
type Message struct {
	MessageID string // without angle brackets
	From      string // envelope
	To        []string
	Subject   string
	OrderID   string
	EventID   string
	Body      string // decoded
	TLS       bool
}

// Server is a real SMTP server (github.com/emersion/go-smtp) on a loopback port, whose
// behaviour tests switch at run time.
type Server struct {
	addr string

	mu         sync.Mutex
	srv        *smtp.Server
	ln         net.Listener
	msgs       []Message
	changed    chan struct{} // closed and replaced on every change
	rejectRcpt map[string]bool
	tempFail   bool          // answer 421 to EHLO
	gate       chan struct{} // when non-nil, sessions wait until it is closed
	sessions   int           // sessions started
	tlsConfig  *tls.Config   // offered with STARTTLS when set
}

// Start starts a server on 127.0.0.1:0, stopped at cleanup. With a TLS config it offers
// STARTTLS.
func Start(t testing.TB, tlsConfig ...*tls.Config) *Server {
	t.Helper()
	s := &Server{changed: make(chan struct{}), rejectRcpt: map[string]bool{}}
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

// URL is the server's smtp:// URL.
func (s *Server) URL() string { return "smtp://" + s.addr }

func (s *Server) serve(ln net.Listener) {
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
func (s *Server) Stop() {
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
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatalf("smtp restart: %v", err)
	}
	s.serve(ln)
}

// SetRejectRcpt makes RCPT TO addr fail with 550 (no such mailbox), or not.
func (s *Server) SetRejectRcpt(addr string, reject bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectRcpt[addr] = reject
}

// SetTempFail makes every new connection fail at once with 421 (try again later), or not:
// nothing can be delivered meanwhile.
func (s *Server) SetTempFail(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tempFail = v
}

// Hold makes new sessions wait until Release.
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
}

// Release lets the sessions held by Hold go on.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

func (s *Server) bump() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
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

// Messages returns a copy of what was Message.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Sessions is the number of sessions started (EHLO Message).
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// WaitFor waits until cond holds on the Message messages, failing the test after timeout.
func (s *Server) WaitFor(t testing.TB, timeout time.Duration, what string, cond func(msgs []Message, sessions int) bool) []Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		msgs := append([]Message(nil), s.msgs...)
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
	s    *Server
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
	rec := Message{
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

func decodeHeader(dec *mime.WordDecoder, s string) string {
	if d, err := dec.DecodeHeader(s); err == nil {
		return d
	}
	return s
}
