package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderstore/orders/internal/testutil/smtptest"

	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/subscribers"
	"github.com/orderstore/orders/subscribers/notify"
)

// TestRebuildSendsNothing: rebuilding the read models, which share their database with the
// e-mail sender's sent-log, sends no e-mail and forgets no sent one. The sender keeps running
// through `orders projections rebuild`; afterwards it sent each order's confirmation once,
// and a new sender group that replays the whole log from the start, over the same sent-log,
// finds every confirmation already sent. A rebuild that cleared or rewrote the sent-log, or
// reset the sender's group, fails here.
func TestRebuildSendsNothing(t *testing.T) {
	const n, wait = 3, 30 * time.Second
	nd := startNode(t)
	mailSrv := startMailServer(t, false)
	db := filepath.Join(t.TempDir(), "readmodels.db")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	store, err := projections.Open(ctx, db)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	w, r := store.DB()
	sent, err := notify.OpenSentLog(ctx, w, r)
	require.NoError(t, err)
	transport, err := notify.NewTransport(mailSrv.URL(), "")
	require.NoError(t, err)
	fast := func(int) time.Duration { return 50 * time.Millisecond }
	// runSender runs a sender on group until the test ends and returns it.
	runSender := func(group string) *notify.Sender {
		s, err := notify.New(subscribers.DialString(nd.url), sent, transport,
			notify.Config{Group: group, Backoff: fast, Reconnect: fast})
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			require.NoError(t, <-done)
		})
		return s
	}
	pay := func(i int) string {
		var p placed
		ok(t, &p, "--esdb", nd.url, "place", "--customer", fmt.Sprintf("c%d@example.com", i), "--item", "X:1:500")
		var paid struct{ Appended int }
		ok(t, &paid, "--esdb", nd.url, "pay", p.ID, "--payment-ref", fmt.Sprintf("ref-%d", i))
		require.Equal(t, 1, paid.Appended)
		return p.ID
	}
	mailsAtLeast := func(k int) func([]smtptest.Message, int) bool {
		return func(msgs []smtptest.Message, _ int) bool { return len(msgs) >= k }
	}
	// handled waits until s has handled (and acked) k events, and returns its counters. A
	// mail reaches the SMTP server before the sender counts it: wait for the ack.
	handled := func(s *notify.Sender, k uint64) notify.Stats {
		deadline := time.Now().Add(wait)
		for s.Stats().Consumer.Handled < k {
			require.True(t, time.Now().Before(deadline), "waiting for %d events handled: %+v", k, s.Stats())
			time.Sleep(20 * time.Millisecond) // polling a counter: the sender has no event to wait on
		}
		return s.Stats()
	}
	const events = 2 * (n + 1) // each order placed and paid

	for i := range n {
		pay(i)
	}
	live := runSender(notify.DefaultGroup)
	mailSrv.WaitFor(t, wait, "the confirmations", mailsAtLeast(n))

	var res struct{ Projections []string }
	ok(t, &res, "--esdb", nd.url, "projections", "rebuild", "--all", "--db", db)
	require.Equal(t, projections.Names(), res.Projections)

	// The live sender goes on past the rebuild: a later payment's mail arrives, and nothing
	// before it was handled twice.
	last := pay(n)
	msgs := mailSrv.WaitFor(t, wait, "the confirmation after the rebuild", func(msgs []smtptest.Message, _ int) bool {
		return len(forOrder(msgs, last)) == 1
	})
	require.Len(t, msgs, n+1, "one confirmation per order")
	st := handled(live, events)
	require.EqualValues(t, n+1, st.Sent, "%+v", st)
	require.Zero(t, st.AlreadySent, "the live group saw no payment again: %+v", st)

	// The sent-log survived the rebuild whole: a fresh group replays every payment and
	// finds each one sent.
	replay := runSender("after-rebuild")
	st = handled(replay, events)
	require.EqualValues(t, n+1, st.AlreadySent, "every payment found in the sent-log: %+v", st)
	require.Zero(t, st.Sent, "nothing sent again: %+v", st)
	require.Len(t, mailSrv.Messages(), n+1, "no mail sent again")
}
