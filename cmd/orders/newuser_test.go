package main

// Tests of what a new user trips over (issue 15), through the built binary.

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
)

// oneLine checks r failed with code and one "orders: " line on stderr, and returns that line.
func oneLine(t *testing.T, r result, code int) string {
	t.Helper()
	require.Equal(t, code, r.code, "stderr: %s", r.stderr)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), "stderr must be one line: %q", r.stderr)
	require.True(t, strings.HasPrefix(r.stderr, "orders: "), r.stderr)
	return strings.TrimSuffix(strings.TrimPrefix(r.stderr, "orders: "), "\n")
}

// TestItemSyntax: a stray field is refused, not read into the SKU; a colon inside a SKU is
// written \: and the help says so.
func TestItemSyntax(t *testing.T) {
	n := startNode(t)
	head := n.head(t)
	r := cli(t, "--esdb", n.url, "place", "--customer", "ann@example.com", "--item", "BOOK:1:100:5")
	require.Contains(t, oneLine(t, r, 2), `bad --item "BOOK:1:100:5": 4 fields, want 3`)
	require.Equal(t, head, n.head(t), "something was appended")

	var p placed
	ok(t, &p, "--esdb", n.url, "place", "--customer", "ann@example.com", "--item", `urn\:sku\:9:2:500`)
	var shown showOutput
	ok(t, &shown, "--esdb", n.url, "show", p.ID)
	require.Equal(t, []lineOutput{{SKU: "urn:sku:9", Quantity: 2, UnitPrice: 500}}, shown.Lines)

	r = cli(t, "place", "--help")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, `write a colon inside a SKU as \:`)
}

// TestCurrencyCodes: only ISO 4217 codes; lower case gets a hint.
func TestCurrencyCodes(t *testing.T) {
	n := startNode(t)
	head := n.head(t)
	base := []string{"--esdb", n.url, "place", "--customer", "ann@example.com", "--item", "B:1:100", "--currency"}
	msg := oneLine(t, cli(t, append(base, "XYZ")...), 2)
	require.Contains(t, msg, `unknown currency "XYZ": not an ISO 4217 code`)
	msg = oneLine(t, cli(t, append(base, "eur")...), 2)
	require.Contains(t, msg, "currency codes are three capital letters, e.g. EUR")
	require.Equal(t, head, n.head(t), "something was appended")
	r := cli(t, append(base, "BHD")...)
	require.Equal(t, 0, r.code, r.stderr)
}

// serveDaemon starts serve with its own data directory and returns it with the directory.
func serveDaemon(t *testing.T, env []string, args ...string) (*daemon, string) {
	t.Helper()
	dir := t.TempDir()
	d := startDaemonEnv(t, env, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--http", "127.0.0.1:0"}, args...)...)
	return d, dir
}

// waitListed polls list until it shows want orders (the projections run asynchronously).
func waitListed(t *testing.T, want int, args ...string) []listOutput {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct {
			Orders []listOutput `json:"orders"`
		}
		ok(t, &list, append([]string{"list"}, args...)...)
		if len(list.Orders) >= want {
			return list.Orders
		}
		if time.Now().After(deadline) {
			t.Fatalf("list shows %d orders, want %d", len(list.Orders), want)
		}
		time.Sleep(50 * time.Millisecond) // polling the read model: no event to wait on
	}
}

// TestMoneyAndDataDir: list, show and the e-mail format money with the currency's ISO 4217
// exponent; list and projections status find the read models by --data or ORDERS_DATA; list
// and show share one JSON vocabulary; the e-mails come from --mail-from.
func TestMoneyAndDataDir(t *testing.T) {
	d, dir := serveDaemon(t, []string{envMailFrom + "=shop@example.com"})
	var jpy, bhd placed
	ok(t, &jpy, "--esdb", d.url, "place", "--customer", "ann@example.com", "--item", "TEA:1:110", "--currency", "JPY")
	ok(t, &bhd, "--esdb", d.url, "place", "--customer", "ann@example.com", "--item", "TEA:1:1250", "--currency", "BHD")
	r := cli(t, "--esdb", d.url, "pay", jpy.ID)
	require.Equal(t, 0, r.code, r.stderr)

	db := filepath.Join(dir, "readmodels.db")
	waitListed(t, 2, "--db", db)
	r = cli(t, "list", "--db", db)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, " 110 JPY ")
	require.Contains(t, r.stdout, " 1.250 BHD ")

	// --data and ORDERS_DATA find the same read models.
	orders := waitListed(t, 2, "--data", dir)
	byID := map[string]listOutput{}
	for _, o := range orders {
		byID[o.ID] = o
	}
	require.EqualValues(t, 110, byID[jpy.ID].Total)
	require.EqualValues(t, 1, byID[jpy.ID].LineCount)
	r = cliEnv(t, []string{envData + "=" + dir}, "list")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, jpy.ID)
	// --data on the command line wins over ORDERS_DB from the environment.
	r = cliEnv(t, []string{envDB + "=" + filepath.Join(t.TempDir(), "other.db")}, "list", "--data", dir)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, jpy.ID)

	// One vocabulary: list's "id" is show's "id"; show lists "lines", list counts "lineCount".
	r = cli(t, "list", "--data", dir, "--json")
	require.NotContains(t, r.stdout, `"orderId"`)
	require.NotContains(t, r.stdout, `"lines"`)

	r = cli(t, "--esdb", d.url, "show", jpy.ID)
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `(?m)^total\s+110 JPY$`, r.stdout)
	require.Regexp(t, `(?m)^line\s+TEA x 1 at 110$`, r.stdout)
	r = cli(t, "--esdb", d.url, "show", bhd.ID)
	require.Regexp(t, `(?m)^total\s+1\.250 BHD$`, r.stdout)

	r = cli(t, "--esdb", d.url, "projections", "status", "--data", dir)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "order_summaries")

	// The payment confirmation: the same amount, from --mail-from (here via ORDERS_MAIL_FROM).
	var eml []byte
	deadline := time.Now().Add(30 * time.Second)
	for eml == nil {
		files, _ := filepath.Glob(filepath.Join(dir, "mail", "*.eml"))
		if len(files) > 0 {
			var err error
			eml, err = os.ReadFile(files[0])
			require.NoError(t, err)
			break
		}
		require.True(t, time.Now().Before(deadline), "no e-mail written; serve: %s", d.stderr)
		time.Sleep(50 * time.Millisecond) // polling the mail directory
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(eml)))
	require.NoError(t, err)
	from, err := mail.ParseAddress(msg.Header.Get("From"))
	require.NoError(t, err)
	require.Equal(t, "shop@example.com", from.Address)
	require.Contains(t, string(eml), "110 JPY")
	require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "stderr: %s", d.stderr)
}

func TestMailFromFlag(t *testing.T) {
	r := cli(t, "serve", "--help")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "--mail-from")
	require.Contains(t, r.stdout, envMailFrom)
	msg := oneLine(t, cli(t, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--mail-from", "Shop <x"), 2)
	require.Contains(t, msg, "bad --mail-from")
}

// TestServeWithExportedESDB: ORDERS_ESDB exported for the CLI does not stop serve from running
// its embedded node on the address the string names; ORDERS_ESDB naming another node while
// --addr or --data is given is a usage error naming both settings, and so is --esdb with
// --addr. The first log line says which node.
func TestServeWithExportedESDB(t *testing.T) {
	addr := closedAddr(t)
	own := envESDB + "=esdb://" + addr + "?tls=false"
	d := startDaemonEnv(t, []string{own}, "serve", "--addr", addr, "--data", t.TempDir(), "--http", "127.0.0.1:0")
	require.Equal(t, "esdb://"+addr+"?tls=false", d.url)
	p := place(t, d.url)
	require.NotEmpty(t, p.ID)
	require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "stderr: %s", d.stderr)
	first, _, _ := strings.Cut(d.stderr.String(), "\n")
	require.Contains(t, first, `msg="using the embedded EventStoreDB node" addr=`+addr)

	other := envESDB + "=esdb://" + closedAddr(t) + "?tls=false"
	for _, flag := range []string{"--addr", "--data"} {
		args := []string{"serve", "--http", "127.0.0.1:0"}
		if flag == "--addr" {
			args = append(args, "--addr", closedAddr(t))
		} else {
			args = append(args, "--data", t.TempDir())
		}
		msg := oneLine(t, cliEnv(t, []string{other}, args...), 2)
		require.Contains(t, msg, envESDB+"=")
		require.Contains(t, msg, flag)
	}
	msg := oneLine(t, cli(t, "serve", "--esdb", "esdb://"+closedAddr(t)+"?tls=false", "--addr", closedAddr(t)), 2)
	require.Contains(t, msg, "--esdb esdb://")
	require.Contains(t, msg, "--addr")

	// Another node and neither --addr nor --data: serve uses it, and says so first.
	n := startNode(t)
	d = startDaemonEnv(t, []string{envESDB + "=" + n.url}, "serve", "--http", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "rm.db"), "--mail-dir", t.TempDir())
	require.Equal(t, n.url, d.url)
	require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "stderr: %s", d.stderr)
	first, _, _ = strings.Cut(d.stderr.String(), "\n")
	require.Contains(t, first, `msg="using an external EventStoreDB node"`)
}

// TestNodeDownMessage: one short sentence, no order id the user never saw; an order command
// adds that nothing was appended; --verbose adds the detail.
func TestNodeDownMessage(t *testing.T) {
	addr := closedAddr(t)
	url := "esdb://" + addr + "?tls=false"
	want := fmt.Sprintf(`cannot reach EventStoreDB at %s (is "orders serve" running?)`, addr)
	for _, c := range []struct {
		args   []string
		suffix string
	}{
		{[]string{"place", "--customer", "ann@example.com", "--item", "B:1:100"}, "; nothing appended"},
		{[]string{"show", uuid.NewString()}, ""},
		{[]string{"pay", uuid.NewString()}, "; nothing appended"},
	} {
		msg := oneLine(t, cli(t, append([]string{"--esdb", url}, c.args...)...), 1)
		require.Equal(t, want+c.suffix, msg, "%v", c.args)
	}
	msg := oneLine(t, cli(t, "--esdb", url, "--verbose", "place", "--customer", "ann@example.com", "--item", "B:1:100"), 1)
	require.True(t, strings.HasPrefix(msg, "cannot reach EventStoreDB at "+addr+": "), msg)
	require.Greater(t, len(msg), len(want))
}

// TestQuietRestart: a normal restart and a clean SIGTERM log no warnings.
func TestQuietRestart(t *testing.T) {
	dir := t.TempDir()
	for i := range 2 {
		d := startDaemon(t, "serve", "--addr", "127.0.0.1:0", "--data", dir, "--http", "127.0.0.1:0")
		place(t, d.url)
		waitListed(t, i+1, "--db", filepath.Join(dir, "readmodels.db"))
		require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "stderr: %s", d.stderr)
		require.NotContains(t, d.stderr.String(), "level=WARN", "run %d", i)
		require.NotContains(t, d.stderr.String(), "level=ERROR", "run %d", i)
	}
}

// TestJSONErrors: with --json a failure prints one JSON object on stdout, with the exit code.
func TestJSONErrors(t *testing.T) {
	n := startNode(t)
	unknown := uuid.NewString()
	tests := []struct {
		args []string
		code int
		kind string
	}{
		{[]string{"--esdb", n.url, "--json", "show", unknown}, 1, "not_found"},
		{[]string{"--esdb", n.url, "--json", "pay", "nope"}, 2, "usage"},
		{[]string{"--json", "--esdb", "esdb://" + closedAddr(t) + "?tls=false", "show", unknown}, 1, "unavailable"},
		{[]string{"--json", "show", "--frobnicate"}, 2, "usage"},
	}
	for _, tc := range tests {
		r := cli(t, tc.args...)
		msg := oneLine(t, r, tc.code)
		var out errorOutput
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		require.NoError(t, dec.Decode(&out), "stdout %q", r.stdout)
		require.False(t, dec.More(), "more than one JSON value: %q", r.stdout)
		require.Equal(t, tc.kind, out.Error.Code, "%v", tc.args)
		require.Equal(t, msg, out.Error.Message)
		require.Equal(t, tc.code, out.Error.ExitCode)
	}
}

// TestMessagesForPeople: argument errors, a missing --customer, --version.
func TestMessagesForPeople(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"ship"}, "missing order ID"},
		{[]string{"show"}, "missing order ID"},
		{[]string{"show", uuid.NewString(), "extra"}, `unexpected argument "extra"`},
		{[]string{"list", "extra"}, `unexpected argument "extra"`},
		{[]string{"place", "--item", "B:1:100"}, "--customer is required"},
	}
	for _, tc := range tests {
		require.True(t, strings.HasPrefix(oneLine(t, cli(t, tc.args...), 2), tc.want), "%v", tc.args)
	}
	r := cli(t, "--version")
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `^orders \S+ commit \S+ go1\.\d+`, r.stdout)
}

// TestRebuildProgressOnStderr: progress is not the result.
func TestRebuildProgressOnStderr(t *testing.T) {
	d, dir := serveDaemon(t, nil)
	db := filepath.Join(dir, "readmodels.db")
	place(t, d.url)
	waitListed(t, 1, "--db", db)
	require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "stderr: %s", d.stderr)
	n := startDaemon(t, "node", "--addr", "127.0.0.1:0", "--data", dir)
	r := cli(t, "--esdb", n.url, "projections", "rebuild", "--all", "--db", db)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, 1, strings.Count(r.stdout, "\n"), "stdout: %q", r.stdout)
	require.True(t, strings.HasPrefix(r.stdout, "rebuilt "), r.stdout)
	require.Contains(t, r.stderr, "replay")
	require.Equal(t, 0, n.stop(t, syscall.SIGTERM))
}

// TestShowAt: the state at a revision or a time, said in the output.
func TestShowAt(t *testing.T) {
	n := startNode(t)
	p := place(t, n.url)
	r := cli(t, "--esdb", n.url, "pay", p.ID)
	require.Equal(t, 0, r.code, r.stderr)

	var out showOutput
	ok(t, &out, "--esdb", n.url, "show", p.ID, "--at", "0")
	require.Equal(t, string(aggregate.StatusPlaced), out.Status)
	require.EqualValues(t, 0, out.Revision)
	require.Len(t, out.Events, 1)
	require.NotNil(t, out.AsOf)
	require.Equal(t, asOfOutput{At: "0", Revision: 0, LaterEvents: 1}, *out.AsOf)

	r = cli(t, "--esdb", n.url, "show", p.ID, "--at", "0")
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `(?m)^as of\s+revision 0 \(--at 0\); 1 later event\(s\) not folded$`, r.stdout)
	require.Regexp(t, `(?m)^status\s+placed$`, r.stdout)

	// By time: the paid event's time folds both; a time before the order is refused.
	var full showOutput
	ok(t, &full, "--esdb", n.url, "show", p.ID)
	paidAt := full.Events[1].Time.Format(time.RFC3339Nano)
	ok(t, &out, "--esdb", n.url, "show", p.ID, "--at", paidAt)
	require.Equal(t, string(aggregate.StatusPaid), out.Status)
	require.Equal(t, 0, out.AsOf.LaterEvents)
	before := full.Events[0].Time.Add(-time.Hour).Format(time.RFC3339)
	require.Contains(t, oneLine(t, cli(t, "--esdb", n.url, "show", p.ID, "--at", before), 1), "did not exist yet")
	require.Contains(t, oneLine(t, cli(t, "--esdb", n.url, "show", p.ID, "--at", "7"), 1), "has no revision 7")
	require.Contains(t, oneLine(t, cli(t, "--esdb", n.url, "show", p.ID, "--at", "yesterday"), 2), "bad --at")
	require.Equal(t, []string{aggregate.TypeOrderPlaced, aggregate.TypeOrderPaid}, n.types(t, eventstore.StreamName(p.ID)))
}
