package notify_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/orderstore/orders/internal/testutil/smtptest"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/subscribers"
	"github.com/orderstore/orders/subscribers/notify"
)

// The crash tests run the sender in a child process: this test binary again, with
// NOTIFY_CHILD=1, which runs childMain instead of the tests.
const (
	envChild   = "NOTIFY_CHILD"
	envESDB    = "NOTIFY_ESDB"
	envSMTP    = "NOTIFY_SMTP"
	envSentLog = "NOTIFY_SENTLOG"   // sent-log database: SQLite file or PostgreSQL URL
	envPay     = "NOTIFY_PAY"       // order id to pay (total in NOTIFY_PAY_TOTAL) before sending
	envPayTot  = "NOTIFY_PAY_TOTAL" // its total
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// childMain is the "serving process": it optionally pays an order (printing "paid" once the
// payment is stored), then runs a sender until SIGTERM (or SIGKILL).
func childMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	conn := os.Getenv(envESDB)
	db, err := sqlDB(os.Getenv(envSentLog))
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	sent, err := notify.OpenSentLog(ctx, db, db)
	if err != nil {
		return fail(err)
	}
	tr, err := notify.NewSMTPTransport(notify.SMTPConfig{URL: os.Getenv(envSMTP), Timeout: 5 * time.Second})
	if err != nil {
		return fail(err)
	}
	s, err := notify.New(subscribers.DialString(conn), sent, tr, notify.Config{
		Backoff: fastBackoff, Reconnect: fastReconnect, Logger: logger,
	})
	if err != nil {
		return fail(err)
	}
	if id := os.Getenv(envPay); id != "" {
		var total int64
		fmt.Sscan(os.Getenv(envPayTot), &total)
		client, err := eventstore.Connect(conn)
		if err != nil {
			return fail(err)
		}
		repo, err := eventstore.NewRepository(client, eventstore.RepositoryConfig{})
		if err != nil {
			return fail(err)
		}
		_, err = repo.Execute(ctx, id, eventstore.Metadata{}, func(o *aggregate.Order) error {
			return o.Pay("ref-"+id, total, time.Now())
		})
		_ = client.Close()
		if err != nil {
			return fail(err)
		}
		fmt.Println("paid")
	}
	fmt.Println("running")
	if err := s.Run(ctx); err != nil {
		return fail(err)
	}
	return 0
}

// child is a running child process.
type child struct {
	cmd     *exec.Cmd
	lines   chan string
	running chan struct{} // closed when the child printed "running"
	done    chan struct{}
	stderr  *esdbnodetest.Buffer
}

func (e *testEnv) startChild(t *testing.T, extraEnv ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		envChild+"=1",
		envESDB+"="+e.node.ConnectionString(),
		envSMTP+"="+e.smtp.URL(),
		envSentLog+"="+e.sentURL,
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	c := &child{cmd: cmd, lines: make(chan string, 16), running: make(chan struct{}), done: make(chan struct{}), stderr: &esdbnodetest.Buffer{}}
	cmd.Stderr = c.stderr
	require.NoError(t, cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "running" {
				close(c.running)
			}
			select {
			case c.lines <- sc.Text():
			default: // nobody is waiting for more lines
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		close(c.lines)
	}()
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.kill(t)
		if t.Failed() {
			t.Logf("child %d stderr:\n%s", cmd.Process.Pid, c.stderr.String())
		}
	})
	return c
}

// waitLine waits for the child to print want.
func (c *child) waitLine(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(waitLong)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited before printing %q: %s", want, c.stderr.String())
			}
			if l == want {
				return
			}
		case <-timeout:
			t.Fatalf("child did not print %q", want)
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(waitLong):
		t.Errorf("child %d survived SIGKILL", c.cmd.Process.Pid)
	}
}

// stop sends SIGTERM, once the child handles it, and waits for a clean exit.
func (c *child) stop(t *testing.T) {
	t.Helper()
	select {
	case <-c.running:
	case <-c.done:
		t.Fatalf("child %d exited early: %s", c.cmd.Process.Pid, c.stderr.String())
	case <-time.After(waitLong):
		t.Fatalf("child %d never ran", c.cmd.Process.Pid)
	}
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-c.done:
		assert.Equal(t, 0, c.cmd.ProcessState.ExitCode(), "child stderr: %s", c.stderr.String())
	case <-time.After(waitLong):
		t.Fatalf("child %d ignored SIGTERM", c.cmd.Process.Pid)
	}
}

// TestCrashBeforeDispatch: the serving process stores the payment and is SIGKILLed before
// anything is sent (it is stuck in the SMTP greeting); after a restart the e-mail arrives,
// once.
func TestCrashBeforeDispatch(t *testing.T) {
	e := newEnv(t)
	o := e.place(t, "ada@example.com")
	e.smtp.Hold()
	c := e.startChild(t, envPay+"="+o.ID, fmt.Sprintf("%s=%d", envPayTot, o.Total))
	c.waitLine(t, "paid")
	// The child is dispatching: its SMTP session is open and held.
	e.smtp.WaitFor(t, waitLong, "the child's SMTP session", func(_ []smtptest.Message, sessions int) bool { return sessions >= 1 })
	c.kill(t)
	e.smtp.Release()
	require.Empty(t, e.smtp.Messages(), "nothing sent before the crash")
	require.Zero(t, e.sentCount(t))
	// The payment is stored.
	paid := e.eventID(t, o, aggregate.TypeOrderPaid)

	c2 := e.startChild(t)
	msgs := e.smtp.WaitFor(t, waitLong, "the mail after restart", atLeast(1))
	e.waitIdle(t, notify.DefaultGroup)
	c2.stop(t)
	msgs = e.smtp.Messages()
	require.Len(t, msgs, 1, "once")
	assert.Equal(t, notify.MessageID(notify.KindPaymentConfirmation, paid, notify.DefaultDomain), msgs[0].MessageID)
	assert.Equal(t, []string{"ada@example.com"}, msgs[0].To)
	assert.Equal(t, 1, e.sentCount(t))
}

// TestKilledAtRandomUnderLoad: the sender is SIGKILLed at random moments while payments
// stream in. Every paid order gets at least one e-mail, and every duplicate carries the
// Message-ID of its original.
func TestKilledAtRandomUnderLoad(t *testing.T) {
	e := newEnv(t)
	n, kills := 40, 8
	if testing.Short() {
		n, kills = 20, 4
	}
	var orders []order
	for i := range n {
		orders = append(orders, e.place(t, fmt.Sprintf("c%d@example.com", i)))
	}

	// Payments stream in while senders come and go.
	payDone := make(chan struct{})
	go func() {
		defer close(payDone)
		tick := time.NewTicker(15 * time.Millisecond)
		defer tick.Stop()
		for _, o := range orders {
			<-tick.C
			_, err := e.repo.Execute(context.Background(), o.ID, eventstore.Metadata{}, func(a *aggregate.Order) error {
				return a.Pay("ref-"+o.ID, o.Total, time.Now())
			})
			if err != nil {
				t.Errorf("pay %s: %v", o.ID, err)
				return
			}
		}
	}()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for range kills {
		c := e.startChild(t)
		c.waitLine(t, "running")
		// Fault injection at a random moment, not synchronisation.
		time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
		c.kill(t)
	}
	<-payDone

	c := e.startChild(t)
	// Every paid order sent and recorded (an event whose sender died between the two is
	// sent again by this last child).
	waitUntil(t, 2*waitLong, "every paid order in the sent-log", func() (bool, error) {
		return e.sentCount(t) == n, nil
	})
	e.waitIdle(t, notify.DefaultGroup)
	c.stop(t)

	msgs := e.smtp.Messages()
	byOrder := map[string][]smtptest.Message{}
	for _, m := range msgs {
		byOrder[m.OrderID] = append(byOrder[m.OrderID], m)
	}
	duplicates := 0
	for _, o := range orders {
		got := byOrder[o.ID]
		require.NotEmpty(t, got, "order %s has no e-mail", o.ID)
		want := notify.MessageID(notify.KindPaymentConfirmation, e.eventID(t, o, aggregate.TypeOrderPaid), notify.DefaultDomain)
		for _, m := range got {
			assert.Equal(t, want, m.MessageID, "a duplicate carries the original's Message-ID")
		}
		duplicates += len(got) - 1
	}
	assert.Len(t, byOrder, n, "no mail for anything else")
	assert.Equal(t, n, e.sentCount(t))
	t.Logf("%d paid orders, %d kills, %d e-mails, %d duplicates", n, kills, len(msgs), duplicates)
	// A sender handles one event at a time and records it right after the send, so a kill
	// can catch at most one message sent but not recorded: at most one duplicate per kill
	// (the last sender stops gracefully and causes none).
	assert.LessOrEqual(t, duplicates, kills, "more duplicates than kills")
	fmt.Printf("notify: kill test saw %d duplicate e-mail(s) for %d paid orders over %d kills\n", duplicates, n, kills)
}

// TestTwoProcessesShareTheGroup: two sender processes share the group and a PostgreSQL
// sent-log (what several app instances share); without crashes no e-mail is sent twice.
func TestTwoProcessesShareTheGroup(t *testing.T) {
	e := newEnvWith(t, postgresBackend)
	c1 := e.startChild(t)
	c2 := e.startChild(t)
	c1.waitLine(t, "running")
	c2.waitLine(t, "running")
	e.waitConnections(t, notify.DefaultGroup, 2)
	const n = 20
	var orders []order
	for i := range n {
		orders = append(orders, e.place(t, fmt.Sprintf("c%d@example.com", i)))
	}
	for _, o := range orders {
		e.pay(t, o)
	}
	e.smtp.WaitFor(t, waitLong, "all mails", atLeast(n))
	e.waitIdle(t, notify.DefaultGroup)
	c1.stop(t)
	c2.stop(t)
	msgs := e.smtp.Messages()
	require.Len(t, msgs, n)
	assert.Len(t, countBy(msgs, func(m smtptest.Message) string { return m.MessageID }), n)
	assert.Equal(t, n, e.sentCount(t))
}
