package main

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"net/mail"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	smtp "github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/subscribers/notify"
)

// mailMsg is one message as the test SMTP server got it.
type mailMsg struct {
	MessageID string // without angle brackets
	To        []string
	OrderID   string
}

// mailServer is a real SMTP server (github.com/emersion/go-smtp) on a loopback port. While
// refusing, every connection is answered 421 at the greeting, so nothing can be delivered.
type mailServer struct {
	addr string

	mu       sync.Mutex
	srv      *smtp.Server
	msgs     []mailMsg
	sessions int           // connections seen, refused ones included
	refusing bool          // answer 421 to every new connection
	changed  chan struct{} // closed and replaced on every change
}

func startMailServer(t *testing.T, refusing bool) *mailServer {
	t.Helper()
	s := &mailServer{refusing: refusing, changed: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.addr = ln.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = ln.Close()
		_ = srv.Close()
	})
	return s
}

func (s *mailServer) url() string { return "smtp://" + s.addr }

func (s *mailServer) setRefusing(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusing = v
}

func (s *mailServer) bump() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *mailServer) newSession(*smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions++
	s.bump()
	if s.refusing {
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	return &mailSession{s: s}, nil
}

func (s *mailServer) messages() []mailMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mailMsg(nil), s.msgs...)
}

// waitFor waits until cond holds on what was received, failing the test after timeout.
func (s *mailServer) waitFor(t *testing.T, timeout time.Duration, what string, cond func(msgs []mailMsg, sessions int) bool) []mailMsg {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		msgs, sessions, ch := append([]mailMsg(nil), s.msgs...), s.sessions, s.changed
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

type mailSession struct {
	s  *mailServer
	to []string
}

func (x *mailSession) Reset()                               { x.to = nil }
func (x *mailSession) Logout() error                        { return nil }
func (x *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *mailSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: "bad message: " + err.Error()}
	}
	rec := mailMsg{
		MessageID: strings.Trim(m.Header.Get("Message-ID"), "<>"),
		To:        append([]string(nil), x.to...),
		OrderID:   m.Header.Get("X-Order-ID"),
	}
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, rec)
	x.s.bump()
	x.s.mu.Unlock()
	return nil
}

// forOrder returns the messages about order id.
func forOrder(msgs []mailMsg, id string) []mailMsg {
	var out []mailMsg
	for _, m := range msgs {
		if m.OrderID == id {
			out = append(out, m)
		}
	}
	return out
}

// paidEventID reads the id of the order's OrderPaid event from the node at url.
func paidEventID(t *testing.T, url, orderID string) uuid.UUID {
	t.Helper()
	client, err := eventstore.Connect(url)
	require.NoError(t, err)
	defer client.Close()
	rs, err := client.ReadStream(t.Context(), eventstore.StreamName(orderID), esdb.ReadStreamOptions{}, 100)
	require.NoError(t, err)
	defer rs.Close()
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			t.Fatalf("order %s has no %s event", orderID, aggregate.TypeOrderPaid)
		}
		require.NoError(t, err)
		if ev.Event.EventType == aggregate.TypeOrderPaid {
			return ev.Event.EventID
		}
	}
}

// TestServeKilledBeforeDispatchSendsOnceAfterRestart: orders serve stores a payment while the
// SMTP server refuses every connection (421), is SIGKILLed while the e-mail is still undelivered,
// and after a restart on the same data directory sends that e-mail exactly once.
func TestServeKilledBeforeDispatchSendsOnceAfterRestart(t *testing.T) {
	const wait = 30 * time.Second
	mailSrv := startMailServer(t, true)
	dir := t.TempDir()
	args := func(addr string) []string {
		return []string{"serve", "--addr", addr, "--data", dir, "--http", "127.0.0.1:0", "--smtp", mailSrv.url()}
	}

	d := startDaemon(t, args("127.0.0.1:0")...)
	addr := strings.TrimSuffix(strings.TrimPrefix(d.url, "esdb://"), "?tls=false")
	p := place(t, d.url)
	var paid struct {
		Status   string `json:"status"`
		Appended int    `json:"appended"`
	}
	ok(t, &paid, "--esdb", d.url, "pay", p.ID, "--payment-ref", "ref-1")
	require.Equal(t, "paid", paid.Status)
	require.Equal(t, 1, paid.Appended, "the payment is appended")
	want := notify.MessageID(notify.KindPaymentConfirmation, paidEventID(t, d.url, p.ID), notify.DefaultDomain)

	// The sender has the event and is trying to dispatch it: it has connected, and been refused.
	mailSrv.waitFor(t, wait, "a refused SMTP connection", func(_ []mailMsg, sessions int) bool { return sessions >= 1 })
	require.Empty(t, mailSrv.messages(), "nothing delivered before the kill")
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGKILL))
	_ = d.cmd.Wait()
	require.Empty(t, mailSrv.messages(), "nothing delivered before the kill")

	mailSrv.setRefusing(false)
	d2 := startDaemon(t, args(addr)...)
	require.Equal(t, d.url, d2.url, "same node address after the restart")
	msgs := mailSrv.waitFor(t, wait, "the payment confirmation after the restart", func(msgs []mailMsg, _ int) bool {
		return len(forOrder(msgs, p.ID)) >= 1
	})
	first := forOrder(msgs, p.ID)
	require.Len(t, first, 1)
	require.Equal(t, want, first[0].MessageID)
	require.True(t, strings.HasPrefix("<"+first[0].MessageID+">", "<orderpaid."))
	require.Equal(t, []string{"ada@example.com"}, first[0].To)

	// No second copy: a later payment's e-mail arrives, then the group has nothing in flight.
	var p2 placed
	ok(t, &p2, "--esdb", d2.url, "place", "--customer", "bob@example.com", "--item", "X:1:500")
	ok(t, &paid, "--esdb", d2.url, "pay", p2.ID, "--payment-ref", "ref-2")
	require.Equal(t, 1, paid.Appended)
	mailSrv.waitFor(t, wait, "the second order's confirmation", func(msgs []mailMsg, _ int) bool {
		return len(forOrder(msgs, p2.ID)) >= 1
	})
	deadline := time.Now().Add(wait)
	for {
		var info subscriptionJSON
		ok(t, &info, "--esdb", d2.url, "subscriptions", "info", notify.DefaultGroup)
		if info.InFlight == 0 && info.Parked == 0 && info.Connections >= 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "group %s still busy: %+v", notify.DefaultGroup, info)
	}
	msgs = mailSrv.messages()
	require.Len(t, forOrder(msgs, p.ID), 1, "the first order's confirmation was sent once")
	require.Len(t, forOrder(msgs, p2.ID), 1)
	require.Len(t, msgs, 2)

	require.Equal(t, 0, d2.stop(t, syscall.SIGTERM), "stderr: %s", d2.stderr)
}
