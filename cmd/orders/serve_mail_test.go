package main

import (
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orderstore/orders/internal/testutil/smtptest"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/subscribers/notify"
)

// startMailServer starts a real SMTP server; while refusing, every connection is answered 421
// at the greeting, so nothing can be delivered.
func startMailServer(t *testing.T, refusing bool) *smtptest.Server {
	t.Helper()
	s := smtptest.Start(t)
	s.SetTempFail(refusing)
	return s
}

// forOrder returns the messages about order id.
func forOrder(msgs []smtptest.Message, id string) []smtptest.Message {
	var out []smtptest.Message
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
		return []string{"serve", "--addr", addr, "--data", dir, "--http", "127.0.0.1:0", "--smtp", mailSrv.URL()}
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
	mailSrv.WaitFor(t, wait, "a refused SMTP connection", func(_ []smtptest.Message, sessions int) bool { return sessions >= 1 })
	require.Empty(t, mailSrv.Messages(), "nothing delivered before the kill")
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGKILL))
	_ = d.cmd.Wait()
	require.Empty(t, mailSrv.Messages(), "nothing delivered before the kill")

	mailSrv.SetTempFail(false)
	d2 := startDaemon(t, args(addr)...)
	require.Equal(t, d.url, d2.url, "same node address after the restart")
	msgs := mailSrv.WaitFor(t, wait, "the payment confirmation after the restart", func(msgs []smtptest.Message, _ int) bool {
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
	mailSrv.WaitFor(t, wait, "the second order's confirmation", func(msgs []smtptest.Message, _ int) bool {
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
	msgs = mailSrv.Messages()
	require.Len(t, forOrder(msgs, p.ID), 1, "the first order's confirmation was sent once")
	require.Len(t, forOrder(msgs, p2.ID), 1)
	require.Len(t, msgs, 2)

	require.Equal(t, 0, d2.stop(t, syscall.SIGTERM), "stderr: %s", d2.stderr)
}
