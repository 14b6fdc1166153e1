package notify_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderstore/orders/internal/testutil/smtptest"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"github.com/orderstore/orders/subscribers"
	"github.com/orderstore/orders/subscribers/notify"
)

const waitLong = 30 * time.Second

// fastBackoff keeps retries quick in tests: 50ms, 100ms, 200ms, then 300ms.
func fastBackoff(attempt int) time.Duration {
	return min(50*time.Millisecond<<(attempt-1), 300*time.Millisecond)
}

func fastReconnect(attempt int) time.Duration {
	return min(50*time.Millisecond<<(attempt-1), 500*time.Millisecond)
}

// testEnv is a real node, a real SMTP server and a real SQLite sent-log.
type testEnv struct {
	node    *esdbnode.Server
	client  *esdb.Client
	repo    *eventstore.Repository
	smtp    *smtptest.Server
	sentURL string         // the read-model database holding the sent-log
	sent    notify.SentLog // the test's own handle on it
}

// newEnv keeps the sent-log in SQLite, the default.
func newEnv(t *testing.T) *testEnv { return newEnvWith(t, sqliteBackend) }

func newEnvWith(t *testing.T, b backend) *testEnv {
	t.Helper()
	node := esdbnodetest.Start(t)
	client := esdbnodetest.Client(t, node)
	repo, err := eventstore.NewRepository(client, eventstore.RepositoryConfig{})
	require.NoError(t, err)
	url := b.newURL(t)
	return &testEnv{node: node, client: client, repo: repo, smtp: smtptest.Start(t), sentURL: url, sent: openSentLog(t, url)}
}

func (e *testEnv) sentCount(t testing.TB) int { return sentCount(t, e.sentURL) }

func (e *testEnv) dial() subscribers.Dial { return subscribers.DialString(e.node.ConnectionString()) }

// order is a placed order of the tests.
type order struct {
	ID       string
	Customer string
	Total    int64
}

func (e *testEnv) place(t testing.TB, customer string) order {
	t.Helper()
	id := uuid.NewString()
	res, err := e.repo.Execute(t.Context(), id, eventstore.CommandMetadata(uuid.NewString(), "test"), func(o *aggregate.Order) error {
		return o.Place(aggregate.PlaceOrder{
			Customer: customer,
			Currency: "EUR",
			Lines:    []aggregate.Line{{SKU: "BOOK-1", Quantity: 2, UnitPrice: 1250}, {SKU: "PEN", Quantity: 1, UnitPrice: 99}},
		}, time.Now())
	})
	require.NoError(t, err)
	return order{ID: id, Customer: customer, Total: res.Order.Total()}
}

func (e *testEnv) pay(t testing.TB, o order) {
	t.Helper()
	_, err := e.repo.Execute(t.Context(), o.ID, eventstore.CommandMetadata(uuid.NewString(), "test"), func(a *aggregate.Order) error {
		return a.Pay("ref-"+o.ID, o.Total, time.Now())
	})
	require.NoError(t, err)
}

func (e *testEnv) ship(t testing.TB, o order) {
	t.Helper()
	_, err := e.repo.Execute(t.Context(), o.ID, eventstore.CommandMetadata(uuid.NewString(), "test"), func(a *aggregate.Order) error {
		return a.Ship(time.Now())
	})
	require.NoError(t, err)
}

// eventID is the id of the order's event of the given type.
func (e *testEnv) eventID(t testing.TB, o order, typ string) uuid.UUID {
	t.Helper()
	h, err := e.repo.ReadStream(t.Context(), eventstore.StreamName(o.ID))
	require.NoError(t, err)
	for _, r := range h {
		if r.Type == typ {
			return r.EventID
		}
	}
	t.Fatalf("order %s has no %s", o.ID, typ)
	return uuid.Nil
}

// runSender runs a sender until the returned stop is called (or the test ends).
func (e *testEnv) runSender(t *testing.T, tr notify.Transport, cfg notify.Config) (*notify.Sender, func()) {
	t.Helper()
	if cfg.Backoff == nil {
		cfg.Backoff = fastBackoff
	}
	if cfg.Reconnect == nil {
		cfg.Reconnect = fastReconnect
	}
	if tr == nil {
		var err error
		tr, err = notify.NewSMTPTransport(notify.SMTPConfig{URL: e.smtp.URL(), Timeout: 5 * time.Second})
		require.NoError(t, err)
	}
	// Each sender has its own store, as if in its own process.
	return e.runSenderWith(t, openSentLog(t, e.sentURL), tr, cfg)
}

// runSenderWith is runSender with a given sent-log.
func (e *testEnv) runSenderWith(t *testing.T, sent notify.SentLog, tr notify.Transport, cfg notify.Config) (*notify.Sender, func()) {
	t.Helper()
	s, err := notify.New(e.dial(), sent, tr, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(waitLong):
				t.Error("sender did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

func (e *testEnv) info(t testing.TB, group string) *esdb.PersistentSubscriptionInfo {
	t.Helper()
	info, err := e.client.GetPersistentSubscriptionInfoToAll(t.Context(), group, esdb.GetPersistentSubscriptionOptions{})
	require.NoError(t, err)
	return info
}

// waitIdle waits until the group has nothing in flight and nothing waiting for a retry.
func (e *testEnv) waitIdle(t testing.TB, group string) {
	t.Helper()
	waitUntil(t, waitLong, "group "+group+" idle", func() (bool, error) {
		info, err := e.client.GetPersistentSubscriptionInfoToAll(t.Context(), group, esdb.GetPersistentSubscriptionOptions{})
		if err != nil {
			return false, err
		}
		return info.Stats.TotalInFlightMessages == 0 && info.Stats.RetryBufferCount == 0, nil
	})
}

func countBy(msgs []smtptest.Message, key func(smtptest.Message) string) map[string]int {
	out := map[string]int{}
	for _, m := range msgs {
		out[key(m)]++
	}
	return out
}

func atLeast(n int) func([]smtptest.Message, int) bool {
	return func(msgs []smtptest.Message, _ int) bool { return len(msgs) >= n }
}

func TestSenderSendsOneMailPerEvent(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { senderSendsOneMailPerEvent(t, newEnvWith(t, b)) })
	}
}

func senderSendsOneMailPerEvent(t *testing.T, e *testEnv) {
	// Orders paid before the sender ever ran get their mail: the group starts at the beginning.
	var orders []order
	for i := range 3 {
		o := e.place(t, fmt.Sprintf("early%d@example.com", i))
		e.pay(t, o)
		orders = append(orders, o)
	}
	unpaid := e.place(t, "unpaid@example.com")
	s, stop := e.runSender(t, nil, notify.Config{})
	for i := range 2 {
		o := e.place(t, fmt.Sprintf("late%d@example.com", i))
		e.pay(t, o)
		orders = append(orders, o)
	}
	e.ship(t, orders[0])
	e.ship(t, orders[4])

	msgs := e.smtp.WaitFor(t, waitLong, "7 messages", atLeast(7))
	e.waitIdle(t, notify.DefaultGroup)
	stop()
	msgs = e.smtp.Messages()
	require.Len(t, msgs, 7, "one payment confirmation per paid order, one shipping notice per shipped order")

	byID := map[string]smtptest.Message{}
	for _, m := range msgs {
		byID[m.MessageID] = m
	}
	require.Len(t, byID, 7, "no Message-ID twice")
	for i, o := range orders {
		paid := byID[notify.MessageID(notify.KindPaymentConfirmation, e.eventID(t, o, aggregate.TypeOrderPaid), notify.DefaultDomain)]
		assert.Equal(t, []string{o.Customer}, paid.To, "order %d", i)
		assert.Equal(t, notify.DefaultFrom, paid.From)
		assert.Equal(t, o.ID, paid.OrderID)
		assert.Contains(t, paid.Body, "2 x BOOK-1 at 12.50 EUR = 25.00 EUR")
		assert.Contains(t, paid.Body, "Total paid: 25.99 EUR")
		assert.Contains(t, paid.Subject, o.ID)
	}
	for _, o := range []order{orders[0], orders[4]} {
		shipped, ok := byID[notify.MessageID(notify.KindShippingNotice, e.eventID(t, o, aggregate.TypeOrderShipped), notify.DefaultDomain)]
		require.True(t, ok, "shipping notice of %s", o.ID)
		assert.Contains(t, shipped.Subject, "has shipped")
		assert.Equal(t, []string{o.Customer}, shipped.To)
	}
	for _, m := range msgs {
		assert.NotEqual(t, unpaid.ID, m.OrderID)
	}
	st := s.Stats()
	assert.Equal(t, uint64(7), st.Sent)
	assert.Equal(t, 7, e.sentCount(t))
}

// TestSenderSMTPOutage: the SMTP server refuses for a while, then comes back: every paid
// order gets its e-mail, none twice, nothing parked.
func TestSenderSMTPOutage(t *testing.T) {
	tests := []struct {
		name    string
		outage  func(s *smtptest.Server)
		restore func(t *testing.T, s *smtptest.Server)
	}{
		{"connection refused", func(s *smtptest.Server) { s.Stop() }, func(t *testing.T, s *smtptest.Server) { s.Restart(t) }},
		{"421 at the greeting", func(s *smtptest.Server) { s.SetTempFail(true) }, func(_ *testing.T, s *smtptest.Server) { s.SetTempFail(false) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.outage(e.smtp)
			s, stop := e.runSender(t, nil, notify.Config{})
			const n = 5
			var orders []order
			for i := range n {
				o := e.place(t, fmt.Sprintf("c%d@example.com", i))
				e.pay(t, o)
				orders = append(orders, o)
			}
			// Every event failed at least twice before the server comes back.
			waitUntil(t, waitLong, "failed attempts", func() (bool, error) { return s.Stats().Failed >= 2*n, nil })
			require.Empty(t, e.smtp.Messages())
			tt.restore(t, e.smtp)

			e.smtp.WaitFor(t, waitLong, "all messages", atLeast(n))
			e.waitIdle(t, notify.DefaultGroup)
			stop()
			msgs := e.smtp.Messages()
			require.Len(t, msgs, n, "none twice")
			perOrder := countBy(msgs, func(m smtptest.Message) string { return m.OrderID })
			for _, o := range orders {
				assert.Equal(t, 1, perOrder[o.ID], "order %s", o.ID)
			}
			assert.Zero(t, e.info(t, notify.DefaultGroup).Stats.ParkedMessagesCount)
			assert.Zero(t, s.Stats().Consumer.Parked)
		})
	}
}

// TestSenderParksPermanentFailureAndReplays: a 550 parks the event at once; once the address
// is accepted, replaying the parked messages delivers it.
func TestSenderParksPermanentFailureAndReplays(t *testing.T) {
	e := newEnv(t)
	e.smtp.SetRejectRcpt("bad@example.com", true)
	s, stop := e.runSender(t, nil, notify.Config{})
	bad := e.place(t, "bad@example.com")
	e.pay(t, bad)
	good := e.place(t, "good@example.com")
	e.pay(t, good)

	e.smtp.WaitFor(t, waitLong, "the good message", atLeast(1))
	waitUntil(t, waitLong, "one parked message", func() (bool, error) {
		info, err := e.client.GetPersistentSubscriptionInfoToAll(t.Context(), notify.DefaultGroup, esdb.GetPersistentSubscriptionOptions{})
		if err != nil {
			return false, err
		}
		return info.Stats.ParkedMessagesCount == 1, nil
	})
	st := s.Stats()
	assert.Equal(t, uint64(1), st.Consumer.Parked)
	assert.Equal(t, uint64(1), st.Failed, "parked at once, no retries")
	assert.Contains(t, st.Consumer.LastError, "550")

	// The reason is in the parked stream.
	parked := readParkedReasons(t, e.client, notify.Config{}.SubscriptionGroup().ParkedStream())
	require.Len(t, parked, 1)
	assert.Contains(t, parked[0], "550")

	e.smtp.SetRejectRcpt("bad@example.com", false)
	require.NoError(t, e.client.ReplayParkedMessagesToAll(t.Context(), notify.DefaultGroup, esdb.ReplayParkedMessagesOptions{}))
	msgs := e.smtp.WaitFor(t, waitLong, "the replayed message", atLeast(2))
	e.waitIdle(t, notify.DefaultGroup)
	stop()
	msgs = e.smtp.Messages()
	require.Len(t, msgs, 2)
	perOrder := countBy(msgs, func(m smtptest.Message) string { return m.OrderID })
	assert.Equal(t, 1, perOrder[bad.ID])
	assert.Equal(t, 1, perOrder[good.ID])
	assert.Zero(t, e.info(t, notify.DefaultGroup).Stats.ParkedMessagesCount)
}

// readParkedReasons returns the "reason" metadata of the events in a parked stream.
func readParkedReasons(t *testing.T, client *esdb.Client, stream string) []string {
	t.Helper()
	rs, err := client.ReadStream(t.Context(), stream, esdb.ReadStreamOptions{From: esdb.Start{}}, 100)
	require.NoError(t, err)
	defer rs.Close()
	var out []string
	for {
		ev, err := rs.Recv()
		if err != nil {
			break
		}
		out = append(out, string(ev.Event.SystemMetadata["reason"])+string(ev.Event.UserMetadata))
	}
	return out
}

// TestRecreatedGroupSendsNothingAgain: deleting the sender's group and creating it again
// from the start sends nothing that the sent-log already has.
func TestRecreatedGroupSendsNothingAgain(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { recreatedGroupSendsNothingAgain(t, newEnvWith(t, b)) })
	}
}

func recreatedGroupSendsNothingAgain(t *testing.T, e *testEnv) {
	const n = 3
	for i := range n {
		o := e.place(t, fmt.Sprintf("c%d@example.com", i))
		e.pay(t, o)
	}
	_, stop := e.runSender(t, nil, notify.Config{})
	e.smtp.WaitFor(t, waitLong, "first mails", atLeast(n))
	e.waitIdle(t, notify.DefaultGroup)
	stop()

	require.NoError(t, e.client.DeletePersistentSubscriptionToAll(t.Context(), notify.DefaultGroup, esdb.DeletePersistentSubscriptionOptions{}))
	s2, stop2 := e.runSender(t, nil, notify.Config{})
	waitUntil(t, waitLong, "the new group to go through the old payments", func() (bool, error) {
		return s2.Stats().AlreadySent == n, nil
	})
	// A payment after the re-creation is still sent.
	o := e.place(t, "new@example.com")
	e.pay(t, o)
	e.smtp.WaitFor(t, waitLong, "the new mail", atLeast(n+1))
	e.waitIdle(t, notify.DefaultGroup)
	stop2()
	msgs := e.smtp.Messages()
	require.Len(t, msgs, n+1)
	assert.Len(t, countBy(msgs, func(m smtptest.Message) string { return m.MessageID }), n+1)
	assert.Equal(t, uint64(1), s2.Stats().Sent)
}

// TestTwoSendersShareTheGroup: two senders with their own clients and sent-log connections
// share the group; without crashes no e-mail is sent twice.
func TestTwoSendersShareTheGroup(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { twoSendersShareTheGroup(t, newEnvWith(t, b)) })
	}
}

func twoSendersShareTheGroup(t *testing.T, e *testEnv) {
	s1, stop1 := e.runSender(t, nil, notify.Config{})
	s2, stop2 := e.runSender(t, nil, notify.Config{})
	e.waitConnections(t, notify.DefaultGroup, 2)
	const n = 20
	// Placed first, then paid: alternating place and pay would hand every OrderPaid to the
	// same consumer under RoundRobin.
	var orders []order
	for i := range n {
		orders = append(orders, e.place(t, fmt.Sprintf("c%d@example.com", i)))
	}
	for _, o := range orders {
		e.pay(t, o)
	}
	e.smtp.WaitFor(t, waitLong, "all mails", atLeast(n))
	e.waitIdle(t, notify.DefaultGroup)
	stop1()
	stop2()
	msgs := e.smtp.Messages()
	require.Len(t, msgs, n)
	assert.Len(t, countBy(msgs, func(m smtptest.Message) string { return m.MessageID }), n)
	a, b := s1.Stats().Sent, s2.Stats().Sent
	t.Logf("sender 1 sent %d, sender 2 sent %d", a, b)
	assert.Equal(t, uint64(n), a+b)
	assert.NotZero(t, a, "round robin gives both senders work")
	assert.NotZero(t, b, "round robin gives both senders work")
}

// waitConnections waits until the group has n consumers connected.
func (e *testEnv) waitConnections(t testing.TB, group string, n int) {
	t.Helper()
	waitUntil(t, waitLong, fmt.Sprintf("%d connections to %s", n, group), func() (bool, error) {
		info, err := e.client.GetPersistentSubscriptionInfoToAll(t.Context(), group, esdb.GetPersistentSubscriptionOptions{})
		if err != nil {
			return false, nil // not created yet
		}
		return len(info.Connections) == n, nil
	})
}

// TestFileTransportThroughSender: the default transport writes one .eml per notice.
func TestFileTransportThroughSender(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "mail")
	tr, err := notify.NewFileTransport(dir)
	require.NoError(t, err)
	s, stop := e.runSender(t, tr, notify.Config{})
	o := e.place(t, "ada@example.com")
	e.pay(t, o)
	waitUntil(t, waitLong, "one mail sent", func() (bool, error) { return s.Stats().Sent == 1, nil })
	stop()
	id := notify.MessageID(notify.KindPaymentConfirmation, e.eventID(t, o, aggregate.TypeOrderPaid), notify.DefaultDomain)
	waitUntil(t, time.Second, "the file", func() (bool, error) {
		matches, err := filepath.Glob(filepath.Join(dir, "*.eml"))
		return len(matches) == 1 && strings.HasSuffix(matches[0], notify.FileName(id)), err
	})
}

func TestNewValidates(t *testing.T) {
	dial := subscribers.DialString("esdb://127.0.0.1:1?tls=false")
	tr, err := notify.NewFileTransport(t.TempDir())
	require.NoError(t, err)
	sent := openSentLog(t, filepath.Join(t.TempDir(), "s.db"))
	tests := []struct {
		name string
		f    func() error
	}{
		{"no dial", func() error { _, err := notify.New(nil, sent, tr, notify.Config{}); return err }},
		{"no sent-log", func() error { _, err := notify.New(dial, nil, tr, notify.Config{}); return err }},
		{"no transport", func() error { _, err := notify.New(dial, sent, nil, notify.Config{}); return err }},
		{"negative attempts", func() error { _, err := notify.New(dial, sent, tr, notify.Config{MaxAttempts: -1}); return err }},
		{"bad domain", func() error { _, err := notify.New(dial, sent, tr, notify.Config{Domain: "a@b"}); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, tt.f(), notify.ErrInvalidConfig)
		})
	}
}

// flakySentLog fails RecordSent while failures > 0.
type flakySentLog struct {
	notify.SentLog
	mu       sync.Mutex
	failures int
}

func (f *flakySentLog) RecordSent(ctx context.Context, id uuid.UUID, messageID string, at time.Time) error {
	f.mu.Lock()
	fail := f.failures > 0
	if fail {
		f.failures--
	}
	f.mu.Unlock()
	if fail {
		return fmt.Errorf("sent-log unavailable")
	}
	return f.SentLog.RecordSent(ctx, id, messageID, at)
}

// TestRecordFailureDoesNotResend: when recording fails after a successful send, the retry
// records without sending again.
func TestRecordFailureDoesNotResend(t *testing.T) {
	e := newEnv(t)
	tr, err := notify.NewSMTPTransport(notify.SMTPConfig{URL: e.smtp.URL()})
	require.NoError(t, err)
	sent := &flakySentLog{SentLog: e.sent, failures: 3}
	s, stop := e.runSenderWith(t, sent, tr, notify.Config{Backoff: fastBackoff, Reconnect: fastReconnect})

	o := e.place(t, "ada@example.com")
	e.pay(t, o)
	waitUntil(t, waitLong, "the event recorded", func() (bool, error) { return e.sentCount(t) == 1, nil })
	e.waitIdle(t, notify.DefaultGroup)
	stop()
	assert.Len(t, e.smtp.Messages(), 1, "sent once")
	st := s.Stats()
	assert.Equal(t, uint64(1), st.Sent)
	assert.Equal(t, uint64(3), st.Failed)
}

func TestDefaultBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{
		1: 500 * time.Millisecond, 2: time.Second, 6: 16 * time.Second, 7: 30 * time.Second, 100: 30 * time.Second,
	} {
		if got := notify.DefaultBackoff(attempt); got != want {
			t.Errorf("DefaultBackoff(%d) = %v, want %v", attempt, got, want)
		}
	}
}

// TestEveryEventTypeHasADecision: the sender decides for every event type of the aggregate
// whether it causes a notice; a new type fails here until it is given one.
func TestEveryEventTypeHasADecision(t *testing.T) {
	for _, typ := range aggregate.EventTypes() {
		if _, _, known := notify.Decision(typ); !known {
			t.Errorf("event type %s: the sender neither notifies it nor lists it as causing no notice", typ)
		}
	}
}

// TestUnknownEventTypeIsCountedAndLoggedOnce: an event of a type the sender does not know is
// skipped (nil, so it is acked), counted by type in Stats.Unknown, and logged once per type.
func TestUnknownEventTypeIsCountedAndLoggedOnce(t *testing.T) {
	var logs esdbnodetest.Buffer
	tr, err := notify.NewTransport("", t.TempDir())
	require.NoError(t, err)
	s, err := notify.New(subscribers.DialString("esdb://127.0.0.1:1?tls=false"), openSentLog(t, filepath.Join(t.TempDir(), "s.db")), tr,
		notify.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	ev := func(typ string) subscribers.Event {
		return subscribers.Event{ID: uuid.New(), Stream: eventstore.StreamName(uuid.NewString()), Type: typ, Data: []byte(`{}`)}
	}
	for _, typ := range []string{"OrderRefunded", "OrderRefunded", "OrderReturned", aggregate.TypeOrderPlaced} {
		require.NoError(t, s.Handle(t.Context(), ev(typ)))
	}
	assert.Equal(t, map[string]uint64{"OrderRefunded": 2, "OrderReturned": 1}, s.Stats().Unknown)
	assert.Equal(t, 1, strings.Count(logs.String(), "type=OrderRefunded"), "logged once: %s", logs.String())
	assert.Equal(t, 1, strings.Count(logs.String(), "type=OrderReturned"), "logged once: %s", logs.String())
	assert.Zero(t, s.Stats().Failed)
}
