package projections_test

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/subscribers"
)

// dialer returns a Dial for connString (eventstore.Connect: the client's logging off).
func dialer(connString string) subscribers.Dial { return subscribers.DialString(connString) }

// commander runs order commands through the real repository, re-dialling after any
// connection trouble (the node may be restarted under it). A client is closed only once no
// call is using it: the official client panics when closed under an in-flight call.
type commander struct {
	dial subscribers.Dial
	mu   sync.Mutex
	cur  *conn
	ops  atomic.Int64
}

type conn struct {
	client *esdb.Client
	repo   *eventstore.Repository
	users  int
	stale  bool
}

func (c *commander) get() (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		client, err := c.dial()
		if err != nil {
			return nil, err
		}
		repo, err := eventstore.NewRepository(client, eventstore.RepositoryConfig{MaxAttempts: 20})
		if err != nil {
			_ = client.Close()
			return nil, err
		}
		c.cur = &conn{client: client, repo: repo}
	}
	c.cur.users++
	return c.cur, nil
}

// release ends a use of cn; broken marks it for replacement.
func (c *commander) release(cn *conn, broken bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cn.users--
	if broken && c.cur == cn {
		cn.stale = true
		c.cur = nil
	}
	if cn.stale && cn.users == 0 {
		_ = cn.client.Close()
	}
}

func (c *commander) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil {
		c.cur.stale = true
		if c.cur.users == 0 {
			_ = c.cur.client.Close()
		}
		c.cur = nil
	}
}

var domainErrors = []error{
	aggregate.ErrOrderCancelled, aggregate.ErrAlreadyPaid, aggregate.ErrNotPaid, aggregate.ErrAlreadyShipped,
	aggregate.ErrAlreadyCancelled, aggregate.ErrOrderNotFound, aggregate.ErrOrderExists,
}

// exec runs one command until it is decided (applied or refused by the aggregate), retrying
// connection failures with a fresh client, for at most a minute.
func (c *commander) exec(ctx context.Context, id string, decide func(*aggregate.Order) error) error {
	deadline := time.Now().Add(time.Minute)
	for attempt := 0; ; attempt++ {
		cn, err := c.get()
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = cn.repo.Execute(cctx, id, eventstore.CommandMetadata(uuid.NewString(), "test"), decide)
			cancel()
			decided := err == nil
			for _, d := range domainErrors {
				decided = decided || errors.Is(err, d)
			}
			c.release(cn, !decided)
			if decided {
				if err == nil {
					c.ops.Add(1)
				}
				return nil
			}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("command on %s: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(50*(attempt+1)) * time.Millisecond): // backoff between reconnects
		}
	}
}

// runOrders places n orders and pays, ships and cancels them at random, with workers
// goroutines; some commands on one order race each other on purpose.
func runOrders(ctx context.Context, c *commander, rng *mrand.Rand, n, workers int) error {
	type plan struct {
		id    string
		steps []string
		price int64
	}
	plans := make([]plan, n)
	currencies := []string{"EUR", "USD", "GBP"}
	for i := range plans {
		p := plan{id: uuid.NewString(), price: int64(100 + rng.IntN(10000))}
		switch r := rng.IntN(10); {
		case r < 2:
		case r < 4:
			p.steps = []string{"cancel"}
		case r < 6:
			p.steps = []string{"pay", "cancel"} // race: either may win
		default:
			p.steps = []string{"pay", "ship"}
		}
		plans[i] = p
	}
	var next atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(plans) || ctx.Err() != nil {
					return
				}
				p := plans[i]
				cur := currencies[i%len(currencies)]
				customer := fmt.Sprintf("c%d@example.com", (i*7+w)%9)
				if err := c.exec(ctx, p.id, func(o *aggregate.Order) error {
					return o.Place(aggregate.PlaceOrder{Customer: customer, Currency: cur,
						Lines: []aggregate.Line{{SKU: "sku", Quantity: 1, UnitPrice: p.price}}}, time.Now())
				}); err != nil {
					errs <- err
					return
				}
				var sw sync.WaitGroup
				for k, step := range p.steps {
					run := func() {
						var err error
						switch step {
						case "pay":
							err = c.exec(ctx, p.id, func(o *aggregate.Order) error { return o.Pay("ref-"+p.id[:8], p.price, time.Now()) })
						case "ship":
							err = c.exec(ctx, p.id, func(o *aggregate.Order) error { return o.Ship(time.Now()) })
						case "cancel":
							err = c.exec(ctx, p.id, func(o *aggregate.Order) error { return o.Cancel("test", time.Now()) })
						}
						if err != nil {
							select {
							case errs <- err:
							default:
							}
						}
					}
					if k > 0 && p.steps[0] == "pay" && step == "cancel" {
						sw.Go(run) // races the payment
						continue
					}
					run()
				}
				sw.Wait()
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// waitCaughtUp polls the store's status (counting the log with a fresh client) until every
// projection's lag is 0, or fails the test at the deadline.
func waitCaughtUp(t testing.TB, ctx context.Context, s *projections.Store, dial subscribers.Dial, timeout time.Duration) []projections.ProjectionStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []projections.ProjectionStatus
	var lastErr error
	for time.Now().Before(deadline) {
		client, err := dial()
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err = s.CountLog(cctx, client)
			cancel()
			_ = client.Close()
		}
		if err == nil {
			last, err = s.Status(ctx)
		}
		lastErr = err
		if err == nil {
			done := true
			for _, st := range last {
				done = done && st.Lag == 0 && st.LogEvents > 0
			}
			if done {
				return last
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for catch-up: %v", ctx.Err())
		case <-time.After(100 * time.Millisecond): // polling a condition: there is no event to wait on
		}
	}
	t.Fatalf("projections not caught up after %v: %+v (last error %v)", timeout, last, lastErr)
	return nil
}

// rebuildInto rebuilds all projections from zero into a fresh store at url.
func rebuildInto(t testing.TB, url string, dial subscribers.Dial) *projections.Store {
	t.Helper()
	s := openStore(t, url)
	client, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := s.Rebuild(t.Context(), client, nil, nil); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	return s
}
