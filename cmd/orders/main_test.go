package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

// binary is the orders command, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "orders-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "orders")
	if b := os.Getenv("ORDERS_TEST_CLI_BINARY"); b != "" {
		// A binary built elsewhere, e.g. from an older commit to see a new test fail on it.
		binary = b
	} else {
		build := exec.Command("go", "build", "-o", binary, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building orders:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// cli runs the binary to completion, without ORDERS_ESDB from the environment.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	return cliEnv(t, nil, args...)
}

// cliEnv is cli with env (KEY=VALUE) added to the environment.
func cliEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envESDB+"=") && !strings.HasPrefix(kv, envData+"=") &&
			!strings.HasPrefix(kv, envDB+"=") && !strings.HasPrefix(kv, envMailFrom+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// ok runs the binary with --json and decodes its one JSON object.
func ok(t *testing.T, v any, args ...string) {
	t.Helper()
	r := cli(t, append(args, "--json")...)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	require.NoError(t, dec.Decode(v))
	require.False(t, dec.More(), "more than one JSON value: %q", r.stdout)
}

// node is an embedded node in the test process with a client to inspect it.
type node struct {
	url    string
	client *esdb.Client
}

func startNode(t *testing.T) node {
	srv := esdbnodetest.Start(t)
	return node{url: srv.ConnectionString(), client: esdbnodetest.Client(t, srv)}
}

// types lists the event types of a stream (nil if it does not exist).
func (n node) types(t *testing.T, stream string) []string {
	t.Helper()
	rs, err := n.client.ReadStream(t.Context(), stream, esdb.ReadStreamOptions{}, 10000)
	require.NoError(t, err)
	defer rs.Close()
	var types []string
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return types
		}
		if e, ok := esdb.FromError(err); !ok && e.IsErrorCode(esdb.ErrorCodeResourceNotFound) {
			return nil
		}
		require.NoError(t, err)
		types = append(types, ev.Event.EventType)
	}
}

// head is the position of the last event in $all: it changes with any append anywhere.
func (n node) head(t *testing.T) uint64 {
	t.Helper()
	rs, err := n.client.ReadAll(t.Context(), esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	require.NoError(t, err)
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return 0
	}
	require.NoError(t, err)
	return ev.OriginalEvent().Position.Commit
}

func countType(types []string, typ string) int {
	n := 0
	for _, s := range types {
		if s == typ {
			n++
		}
	}
	return n
}

type placed struct {
	ID       string `json:"id"`
	Revision int64  `json:"revision"`
	Status   string `json:"status"`
	Total    int64  `json:"total"`
}

func place(t *testing.T, url string) placed {
	t.Helper()
	var p placed
	ok(t, &p, "--esdb", url, "place", "--customer", "ada@example.com", "--item", "BOOK-1:2:1250", "--item", "PEN:1:300")
	require.EqualValues(t, 0, p.Revision)
	return p
}

func TestPlacePayShow(t *testing.T) {
	n := startNode(t)
	p := place(t, n.url)
	require.Equal(t, "placed", p.Status)
	require.EqualValues(t, 2800, p.Total)
	_, err := uuid.Parse(p.ID)
	require.NoError(t, err)

	var paid struct {
		Status     string `json:"status"`
		Revision   int64  `json:"revision"`
		Appended   int    `json:"appended"`
		PaymentRef string `json:"paymentRef"`
	}
	ok(t, &paid, "--esdb", n.url, "pay", p.ID, "--payment-ref", "ref-1")
	require.Equal(t, "paid", paid.Status)
	require.EqualValues(t, 1, paid.Revision)
	require.Equal(t, 1, paid.Appended)
	require.Equal(t, "ref-1", paid.PaymentRef)

	// The same reference again: a no-op, not an error.
	ok(t, &paid, "--esdb", n.url, "pay", p.ID, "--payment-ref", "ref-1")
	require.Equal(t, 0, paid.Appended)

	var shown struct {
		ID       string `json:"id"`
		Status   string `json:"status"`
		Total    int64  `json:"total"`
		Currency string `json:"currency"`
		Revision int64  `json:"revision"`
		Events   []struct {
			Revision      uint64    `json:"revision"`
			Type          string    `json:"type"`
			Time          time.Time `json:"time"`
			CorrelationID string    `json:"correlationId"`
		} `json:"events"`
	}
	ok(t, &shown, "--esdb", n.url, "show", p.ID)
	require.Equal(t, p.ID, shown.ID)
	require.Equal(t, "paid", shown.Status)
	require.EqualValues(t, 2800, shown.Total)
	require.Equal(t, "EUR", shown.Currency)
	require.EqualValues(t, 1, shown.Revision)
	require.Len(t, shown.Events, 2)
	require.Equal(t, aggregate.TypeOrderPlaced, shown.Events[0].Type)
	require.Equal(t, aggregate.TypeOrderPaid, shown.Events[1].Type)
	require.EqualValues(t, 1, shown.Events[1].Revision)
	require.False(t, shown.Events[1].Time.IsZero())
	require.NotEmpty(t, shown.Events[1].CorrelationID)

	// ORDERS_ESDB names the node when --esdb is not given.
	env := exec.CommandContext(t.Context(), binary, "show", p.ID)
	env.Env = append(cleanEnv(), envESDB+"="+n.url)
	out, err := env.Output()
	require.NoError(t, err)
	require.Contains(t, string(out), p.ID)

	// Human output: place prints the id alone; show prints the history table.
	r := cli(t, "--esdb", n.url, "place", "--customer", "bob@example.com", "--item", "X:1:5", "--currency", "USD")
	require.Equal(t, 0, r.code, r.stderr)
	id := strings.TrimSpace(r.stdout)
	_, err = uuid.Parse(id)
	require.NoError(t, err, "place printed %q", r.stdout)
	r = cli(t, "--esdb", n.url, "ship", p.ID)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "shipped")
	r = cli(t, "--esdb", n.url, "show", p.ID)
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `status\s+shipped`, r.stdout)
	require.Regexp(t, `(?m)^2\s+OrderShipped\s+\d{4}-\d\d-\d\dT`, r.stdout)
}

func TestConcurrentPayProcesses(t *testing.T) {
	const payers = 6
	tests := []struct {
		name     string
		args     func(i int) []string
		wantOK   int
		wantFail string // stderr phrase of the others
	}{
		{"different references", func(i int) []string { return []string{"--payment-ref", fmt.Sprint("ref-", i)} }, 1, "already paid"},
		{"same reference", func(int) []string { return []string{"--payment-ref", "shared"} }, payers, ""},
		{"default reference", func(int) []string { return nil }, payers, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t)
			p := place(t, n.url)
			cmds := make([]*exec.Cmd, payers)
			outs := make([]*bytes.Buffer, payers)
			for i := range cmds {
				cmds[i] = exec.CommandContext(t.Context(), binary, append([]string{"--esdb", n.url, "pay", p.ID}, tc.args(i)...)...)
				cmds[i].Env = cleanEnv()
				outs[i] = new(bytes.Buffer)
				cmds[i].Stderr = outs[i]
			}
			// Start them all before waiting for any.
			for _, c := range cmds {
				require.NoError(t, c.Start())
			}
			succeeded := 0
			for i, c := range cmds {
				err := c.Wait()
				if err == nil {
					succeeded++
					continue
				}
				ee, isExit := errors.AsType[*exec.ExitError](err)
				require.True(t, isExit, "payer %d: %v", i, err)
				require.Equal(t, 1, ee.ExitCode(), "payer %d: %s", i, outs[i])
				require.Contains(t, outs[i].String(), tc.wantFail)
			}
			require.Equal(t, tc.wantOK, succeeded)
			require.Equal(t, 1, countType(n.types(t, eventstore.StreamName(p.ID)), aggregate.TypeOrderPaid))
		})
	}
}

func TestBadInput(t *testing.T) {
	n := startNode(t)
	open := place(t, n.url)
	cancelled := place(t, n.url)
	r := cli(t, "--esdb", n.url, "cancel", cancelled.ID, "--reason", "test")
	require.Equal(t, 0, r.code, r.stderr)
	unknown := uuid.NewString()
	down := "esdb://" + closedAddr(t) + "?tls=false"

	tests := []struct {
		name   string
		args   []string
		code   int
		phrase string
	}{
		{"malformed id", []string{"pay", "not-a-uuid"}, 2, `malformed order id "not-a-uuid"`},
		{"malformed id on show", []string{"show", "1234"}, 2, "malformed order id"},
		{"missing id", []string{"ship"}, 2, "missing order ID"},
		{"unknown command", []string{"refund", open.ID}, 2, `unknown command "refund"`},
		{"unknown flag", []string{"pay", open.ID, "--tip", "5"}, 2, "unknown flag: --tip"},
		{"unknown order pay", []string{"pay", unknown}, 1, fmt.Sprintf("order %q not found", unknown)},
		{"unknown order show", []string{"show", unknown}, 1, fmt.Sprintf("order %q not found", unknown)},
		{"unknown order ship", []string{"ship", unknown}, 1, fmt.Sprintf("order %q not found", unknown)},
		{"no item", []string{"place", "--customer", "a@example.com"}, 2, "at least one --item"},
		{"bad item syntax", []string{"place", "--customer", "a@example.com", "--item", "BOOK-1"}, 2, `bad --item "BOOK-1"`},
		{"non-numeric quantity", []string{"place", "--customer", "a@example.com", "--item", "B:two:100"}, 2, "quantity is not an integer"},
		{"zero quantity", []string{"place", "--customer", "a@example.com", "--item", "B:0:100"}, 2, "quantity must be positive"},
		{"negative quantity", []string{"place", "--customer", "a@example.com", "--item", "B:-1:100"}, 2, "quantity must be positive"},
		{"negative unit price", []string{"place", "--customer", "a@example.com", "--item", "B:1:-100"}, 2, "unit price must not be negative"},
		{"zero total", []string{"place", "--customer", "a@example.com", "--item", "B:1:0"}, 2, "invalid order line"},
		{"invalid e-mail", []string{"place", "--customer", "not-an-address", "--item", "B:1:100"}, 2, "invalid customer e-mail address"},
		{"invalid currency", []string{"place", "--customer", "a@example.com", "--item", "B:1:100", "--currency", "euro"}, 2, `unknown currency "euro"`},
		{"zero amount", []string{"pay", open.ID, "--amount", "0"}, 2, "--amount must be positive"},
		{"negative amount", []string{"pay", open.ID, "--amount", "-5"}, 2, "--amount must be positive"},
		{"non-numeric amount", []string{"pay", open.ID, "--amount", "ten"}, 2, "invalid argument"},
		{"empty payment reference", []string{"pay", open.ID, "--payment-ref", ""}, 2, "--payment-ref must not be empty"},
		{"wrong amount", []string{"pay", open.ID, "--amount", "2799"}, 1, "payment amount does not match order total"},
		{"paying a cancelled order", []string{"pay", cancelled.ID}, 1, "order cancelled"},
		{"shipping an unpaid order", []string{"ship", open.ID}, 1, "order not paid"},
		{"cancelling twice", []string{"cancel", cancelled.ID}, 1, "already cancelled"},
		{"node unreachable", []string{"--esdb", down, "pay", open.ID}, 1, "cannot reach EventStoreDB at " + strings.TrimSuffix(strings.TrimPrefix(down, "esdb://"), "?tls=false")},
		{"node unreachable on place", []string{"--esdb", down, "place", "--customer", "a@example.com", "--item", "B:1:100"}, 1, "cannot reach EventStoreDB"},
		{"bad connection string", []string{"--esdb", "esdb://[::1", "show", open.ID}, 2, "invalid connection string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			headBefore := n.head(t)
			openBefore := n.types(t, eventstore.StreamName(open.ID))
			cancelledBefore := n.types(t, eventstore.StreamName(cancelled.ID))

			args := tc.args
			if args[0] != "--esdb" {
				args = append([]string{"--esdb", n.url}, args...)
			}
			r := cli(t, args...)
			require.Equal(t, tc.code, r.code, "stderr: %s", r.stderr)
			require.Empty(t, r.stdout)
			require.True(t, strings.HasSuffix(r.stderr, "\n"), "stderr: %q", r.stderr)
			require.Equal(t, 1, strings.Count(r.stderr, "\n"), "stderr must be one line: %q", r.stderr)
			require.True(t, strings.HasPrefix(r.stderr, "orders: "), "stderr: %q", r.stderr)
			require.Contains(t, r.stderr, tc.phrase)

			require.Equal(t, headBefore, n.head(t), "something was appended")
			require.Equal(t, openBefore, n.types(t, eventstore.StreamName(open.ID)))
			require.Equal(t, cancelledBefore, n.types(t, eventstore.StreamName(cancelled.ID)))
			require.Nil(t, n.types(t, eventstore.StreamName(unknown)))
		})
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// daemon is a running serve or node process whose ready line was read.
type daemon struct {
	cmd    *exec.Cmd
	url    string
	stderr *esdbnodetest.Buffer
}

var httpLine = regexp.MustCompile(`msg="http listening" addr=(127\.0\.0\.1:\d+)`)

// httpAddr waits for serve's "http listening" log line and returns its address (host:port).
// serve logs it once; there is no event to wait on, so the log is polled.
func (d *daemon) httpAddr(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := httpLine.FindStringSubmatch(d.stderr.String()); m != nil {
			return m[1]
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond): // polling serve's log for its HTTP address
		}
	}
	t.Fatalf("no http address in serve's log: %s", d.stderr)
	return ""
}

var readyLine = regexp.MustCompile(`^orders: node listening on (127\.0\.0\.1:\d+) \((esdb://\S+)\)$`)

// startDaemon runs the binary with args and waits for its ready line.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	return startDaemonEnv(t, nil, args...)
}

// startDaemonEnv is startDaemon with env (KEY=VALUE) added to the environment.
func startDaemonEnv(t *testing.T, env []string, args ...string) *daemon {
	t.Helper()
	d, stdout := spawnDaemon(t, env, args...)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, open := <-lines:
		require.True(t, open, "no ready line; stderr: %s", d.stderr)
		m := readyLine.FindStringSubmatch(line)
		require.NotNil(t, m, "ready line %q", line)
		require.Regexp(t, `^esdb://`+regexp.QuoteMeta(m[1])+`\?tls=(false|true)$`, m[2])
		d.url = m[2]
	case <-time.After(30 * time.Second):
		t.Fatalf("no ready line within 30s; stderr: %s", d.stderr)
	}
	return d
}

// spawnDaemon starts the binary with args (killed when t ends if still
// running), its stderr kept in the daemon, and returns its stdout.
func spawnDaemon(t *testing.T, env []string, args ...string) (*daemon, io.Reader) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	d := &daemon{cmd: cmd, stderr: new(esdbnodetest.Buffer)}
	cmd.Stderr = d.stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return d, stdout
}

// stop sends sig and returns the exit code.
func (d *daemon) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(sig))
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit within 30s of %v; stderr: %s", sig, d.stderr)
		return -1
	}
}

func TestNodeCommand(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, "node", "--addr", "127.0.0.1:0", "--data", dir)

	p := place(t, d.url)
	require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "stderr: %s", d.stderr)

	// The data directory reopens with the order in it.
	srv, err := esdbnode.New(esdbnode.Config{Addr: "127.0.0.1:0", DataDir: dir})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	n := node{url: srv.ConnectionString(), client: esdbnodetest.Client(t, srv)}
	require.Equal(t, []string{aggregate.TypeOrderPlaced}, n.types(t, eventstore.StreamName(p.ID)))
}

func TestServeCommand(t *testing.T) {
	d := startDaemon(t, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--http", "127.0.0.1:0")
	p := place(t, d.url)
	r := cli(t, "--esdb", d.url, "pay", p.ID)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, 0, d.stop(t, os.Interrupt), "stderr: %s", d.stderr)
}

// SIGTERM while serve waits for an external node to answer (before its ready
// line) stops it like any other shutdown: exit 0, no error line. The fake
// node accepts the connection and never answers, so the signal is sent only
// once serve is inside that wait.
func TestServeStopsWhileWaitingForTheExternalNode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	d, stdout := spawnDaemon(t, nil, "serve", "--esdb", "esdb://"+ln.Addr().String()+"?tls=false", "--data", t.TempDir(), "--http", "127.0.0.1:0")
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	select {
	case c := <-accepted:
		t.Cleanup(func() { _ = c.Close() })
	case <-time.After(30 * time.Second):
		t.Fatalf("serve never connected; stderr: %s", d.stderr)
	}
	require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "stderr: %s", d.stderr)
	require.NotContains(t, d.stderr.String(), "orders:", "an error line")
}

func TestServeWithExternalNode(t *testing.T) {
	n := startNode(t)
	d := startDaemon(t, "serve", "--esdb", n.url, "--data", t.TempDir(), "--http", "127.0.0.1:0")
	require.Equal(t, n.url, d.url)
	require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "stderr: %s", d.stderr)

	r := cli(t, "serve", "--esdb", "esdb://"+closedAddr(t)+"?tls=false")
	require.Equal(t, 1, r.code, r.stderr)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	require.Contains(t, r.stderr, "cannot reach EventStoreDB")
}

func TestNodeRefusesNonLoopbackWithoutInsecure(t *testing.T) {
	for _, cmd := range []string{"node", "serve"} {
		t.Run(cmd, func(t *testing.T) {
			r := cli(t, cmd, "--addr", "0.0.0.0:0", "--data", t.TempDir())
			require.Equal(t, 2, r.code, r.stderr)
			require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
			require.Contains(t, r.stderr, "non-loopback")
		})
	}
}

// TestRunInProcess covers run itself, as main calls it.
func TestRunInProcess(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"help", []string{"--help"}, 0, "Usage:", ""},
		{"no command", nil, 2, "", "orders: missing command"},
		{"bad log level", []string{"node", "--log-level", "loud", "--data", "x"}, 2, "", "bad --log-level"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.WithoutCancel(t.Context()), tc.args, &out, &errOut)
			require.Equal(t, tc.code, code, errOut.String())
			require.Contains(t, out.String(), tc.stdout)
			require.Contains(t, errOut.String(), tc.stderr)
		})
	}
}

func TestParseItem(t *testing.T) {
	tests := []struct {
		in   string
		want aggregate.Line
		err  string
	}{
		{"BOOK-1:2:1250", aggregate.Line{SKU: "BOOK-1", Quantity: 2, UnitPrice: 1250}, ""},
		{`urn\:sku\:9:1:0`, aggregate.Line{SKU: "urn:sku:9", Quantity: 1, UnitPrice: 0}, ""},
		{`back\\slash:1:0`, aggregate.Line{SKU: `back\slash`, Quantity: 1, UnitPrice: 0}, ""},
		{"urn:sku:9:1:0", aggregate.Line{}, "5 fields, want 3"},
		{"BOOK:1:100:5", aggregate.Line{}, "4 fields, want 3"},
		{"BOOK", aggregate.Line{}, "missing fields"},
		{":1:2", aggregate.Line{}, "empty SKU"},
		{"B:1:1.50", aggregate.Line{}, "unit price is not an integer"},
		{"B:99999999999999999999:1", aggregate.Line{}, "quantity is not an integer"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseItem(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.Equal(t, exitUsage, exitCode(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
