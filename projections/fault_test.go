package projections_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"

	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/subscribers"
)

var (
	flagOrders   = flag.Int("proj.orders", 200, "orders in the replay-from-zero fault test")
	flagChildren = flag.Int("proj.children", 2, "projection processes in the fault test")
)

// Child-process mode: the test binary re-executed with PROJ_CHILD=1 runs a projections
// Runner (what serve runs) until it is killed.
func TestMain(m *testing.M) {
	if os.Getenv("PROJ_CHILD") == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// errInjected is the fault the child's handler wrapper injects.
var errInjected = errors.New("injected fault")

func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	s, err := projections.Open(ctx, os.Getenv("PROJ_DB"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		return 1
	}
	defer s.Close()
	seed, _ := strconv.ParseUint(os.Getenv("PROJ_FAULT_SEED"), 10, 64)
	var mu sync.Mutex
	rng := mrand.New(mrand.NewPCG(seed, uint64(os.Getpid())))
	roll := func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return rng.Float64()
	}
	cfg := fastConsumer()
	cfg.MaxBatch = 16
	r, err := projections.NewRunner(s, dialer(os.Getenv("PROJ_ESDB")), projections.RunnerConfig{
		Consumer: cfg,
		Wrap: func(name string, h subscribers.BatchHandler) subscribers.BatchHandler {
			return func(ctx context.Context, evs []subscribers.Event) error {
				switch x := roll(); {
				case x < 0.10: // fail before applying: redelivery, reordering
					return errInjected
				case x < 0.20: // apply, then fail: the committed events come again (duplicates)
					if err := h(ctx, evs); err != nil {
						return err
					}
					return errInjected
				}
				return h(ctx, evs)
			}
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: runner:", err)
		return 1
	}
	fmt.Println("ready")
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child: run:", err)
		return 1
	}
	return 0
}

// child is a running projection process.
type child struct {
	cmd *exec.Cmd
	out *esdbnodetest.Buffer
}

func startChild(t *testing.T, dbURL, esdbURL string, seed uint64) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PROJ_CHILD=1", "PROJ_DB="+dbURL, "PROJ_ESDB="+esdbURL, "PROJ_FAULT_SEED="+strconv.FormatUint(seed, 10))
	out := &esdbnodetest.Buffer{Limit: 1 << 20}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	return &child{cmd: cmd, out: out}
}

func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

// TestReplayFromZeroUnderFaults runs a random workload of concurrent commands while
// projection processes are SIGKILLed and restarted at random, the node is restarted once,
// and handlers fail at random before or after applying (forcing redelivery, reordering and
// duplicates). Once every projection reports lag 0, every read-model table must equal, row
// by row, a rebuild from zero into a separate database, and both must equal, row by row,
// what the independent oracle (package verify: the aggregate's fold) computes.
func TestReplayFromZeroUnderFaults(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			testFaults(t, be, true)
		})
	}
}

// TestTwoProcessesSharePostgres: two projection processes on the same groups and the same
// PostgreSQL database, killed and restarted at random while orders are placed, paid,
// shipped and cancelled: the totals are exact.
func TestTwoProcessesSharePostgres(t *testing.T) {
	t.Parallel()
	testFaults(t, backends()[1], false)
}

func testFaults(t *testing.T, be backend, restartNode bool) {
	s0 := seed(t)
	rng := mrand.New(mrand.NewPCG(s0, 3))
	ctx := t.Context()
	addr, dir := esdbnodetest.FreeAddr(t), t.TempDir()
	var nodeMu sync.Mutex
	srv := esdbnodetest.StartAt(t, addr, dir)
	t.Cleanup(func() {
		nodeMu.Lock()
		defer nodeMu.Unlock()
		_ = srv.Close()
	})
	esdbURL := srv.ConnectionString()
	dial := dialer(esdbURL)

	dbURL := be.newURL(t)
	live := openStore(t, dbURL) // migrates before the children start

	var (
		chMu     sync.Mutex
		children = make([]*child, *flagChildren)
		kills    int
	)
	for i := range children {
		children[i] = startChild(t, dbURL, esdbURL, s0+uint64(i))
	}
	t.Cleanup(func() {
		chMu.Lock()
		defer chMu.Unlock()
		for _, c := range children {
			c.kill()
		}
	})

	// Killer: SIGKILL a random child every 80-400 ms and start a new one.
	killCtx, stopKiller := context.WithCancel(ctx)
	var kwg sync.WaitGroup
	kwg.Go(func() {
		krng := mrand.New(mrand.NewPCG(s0, 4))
		for {
			select {
			case <-killCtx.Done():
				return
			case <-time.After(time.Duration(80+krng.IntN(320)) * time.Millisecond): // fault schedule, not synchronisation
			}
			chMu.Lock()
			i := krng.IntN(len(children))
			children[i].kill()
			children[i] = startChild(t, dbURL, esdbURL, s0+uint64(100+kills))
			kills++
			chMu.Unlock()
		}
	})

	cmd := &commander{dial: dial}
	t.Cleanup(cmd.close)
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() { werr = runOrders(ctx, cmd, rng, *flagOrders, 4) })

	if restartNode {
		// Restart the node once, about a third of the way through the commands.
		target := int64(*flagOrders) / 3 * 2
		deadline := time.Now().Add(60 * time.Second)
		for cmd.ops.Load() < target && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // polling the workload's progress: no event to wait on
		}
		nodeMu.Lock()
		if err := srv.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
		srv = esdbnodetest.StartAt(t, addr, dir)
		nodeMu.Unlock()
		t.Logf("node restarted after %d commands", cmd.ops.Load())
	}
	wg.Wait()
	if werr != nil {
		t.Fatalf("workload: %v", werr)
	}
	stopKiller()
	kwg.Wait()
	t.Logf("%d commands, %d child kills", cmd.ops.Load(), kills)

	st := waitCaughtUp(t, ctx, live, dial, 120*time.Second)
	for _, s := range st {
		t.Logf("%s: %d events applied of %d, position %d, head %d", s.Name, s.EventsApplied, s.LogEvents, s.Position, s.HeadPosition)
	}
	chMu.Lock()
	for _, c := range children {
		c.kill()
	}
	chMu.Unlock()

	fresh := be.newURL(t)
	rebuilt := rebuildInto(t, fresh, dial)
	compareDumps(t, "rebuild from zero", dump(t, fresh), "live under faults", dump(t, dbURL))
	checkTotals(t, live)
	// The independent oracle: the aggregate's own fold of every stream, no projection code.
	checkOracle(t, "live under faults", live, dial)
	checkOracle(t, "rebuilt", rebuilt, dial)
	if t.Failed() {
		chMu.Lock()
		t.Logf("a child's output:\n%s", children[0].out.String())
		chMu.Unlock()
	}
}

// checkTotals cross-checks the cross-order totals against the per-order summaries.
func checkTotals(t *testing.T, s *projections.Store) {
	t.Helper()
	ctx := t.Context()
	orders, err := s.ListOrders(ctx, projections.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	wantC := map[[2]string]projections.CustomerTotals{}
	wantR := map[[2]string]projections.Revenue{}
	for _, o := range orders {
		k := [2]string{o.Customer, o.Currency}
		c := wantC[k]
		c.Customer, c.Currency = o.Customer, o.Currency
		c.Orders++
		c.OrderedAmount += o.Total
		if !o.PaidAt.IsZero() {
			c.PaidOrders++
			c.PaidAmount += o.PaidAmount
			rk := [2]string{o.PaidAt.UTC().Format("2006-01-02"), o.Currency}
			r := wantR[rk]
			r.Day, r.Currency = rk[0], rk[1]
			r.Payments++
			r.Amount += o.PaidAmount
			wantR[rk] = r
		}
		if !o.ShippedAt.IsZero() {
			c.ShippedOrders++
		}
		if !o.CancelledAt.IsZero() {
			c.CancelledOrders++
		}
		wantC[k] = c
	}
	cs, err := s.Customers(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != len(wantC) {
		t.Errorf("customer_orders has %d rows, the summaries give %d", len(cs), len(wantC))
	}
	for _, c := range cs {
		if w := wantC[[2]string{c.Customer, c.Currency}]; c != w {
			t.Errorf("customer_orders %+v, the summaries give %+v", c, w)
		}
	}
	rs, err := s.DailyRevenue(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(wantR) {
		t.Errorf("daily_revenue has %d rows, the summaries give %d", len(rs), len(wantR))
	}
	for _, r := range rs {
		if w := wantR[[2]string{r.Day, r.Currency}]; r != w {
			t.Errorf("daily_revenue %+v, the summaries give %+v", r, w)
		}
	}
}
