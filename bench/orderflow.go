package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/subscribers"
)

// orderFlowWriters are the concurrent clients of the order flow.
const orderFlowWriters = 16

// projectionsCatchUpTimeout bounds the wait for the projections after the
// timed part of the order flow.
const projectionsCatchUpTimeout = 2 * time.Minute

// OrderFlow runs the application's order flow against the node at connString
// for d: orderFlowWriters clients place an order and pay it through
// eventstore.Repository (load, decide, append with the expected revision),
// while the app's projections (projections.Runner on a SQLite store in dir,
// one persistent subscription group per projection) run on the same node.
// Events counts the events appended (two per order), Ops the orders, the
// latencies are of one whole order (place then pay). It then waits until
// order_summaries has applied every event and returns that wait too.
func OrderFlow(ctx context.Context, connString, dir string, d time.Duration) (Result, time.Duration, error) {
	if d <= 0 {
		return Result{}, 0, fmt.Errorf("%w: order flow for %v", ErrInvalidArgument, d)
	}
	store, err := projections.Open(ctx, "sqlite://"+filepath.Join(dir, "readmodels.db"))
	if err != nil {
		return Result{}, 0, fmt.Errorf("bench: order flow: %w", err)
	}
	defer store.Close()
	runner, err := projections.NewRunner(store, subscribers.DialString(connString), projections.RunnerConfig{})
	if err != nil {
		return Result{}, 0, fmt.Errorf("bench: order flow: %w", err)
	}
	rctx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- runner.Run(rctx) }()
	defer func() {
		stop()
		<-runDone
	}()
	client, err := eventstore.Connect(connString)
	if err != nil {
		return Result{}, 0, err
	}
	defer client.Close()
	repo, err := eventstore.NewRepository(client, eventstore.RepositoryConfig{})
	if err != nil {
		return Result{}, 0, err
	}
	applied0, err := summariesApplied(ctx, store)
	if err != nil {
		return Result{}, 0, err
	}

	lats := make([][]time.Duration, orderFlowWriters)
	var orders atomic.Int64
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for w := range orderFlowWriters {
		g.Go(func() error {
			for time.Since(start) < d {
				t0 := time.Now()
				if err := placeAndPay(gctx, repo); err != nil {
					return err
				}
				lats[w] = append(lats[w], time.Since(t0))
				orders.Add(1)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Result{}, 0, fmt.Errorf("bench: order flow: %w", err)
	}
	res := Result{Name: "order-flow", Writers: orderFlowWriters, Elapsed: time.Since(start), Ops: int(orders.Load())}
	res.Events = 2 * res.Ops
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	res.P50, res.P99 = percentiles(all)

	// The projections must keep up: wait (polling, there is no event to wait
	// on) until order_summaries reflects every event appended.
	want := applied0 + int64(res.Events)
	deadline := time.Now().Add(projectionsCatchUpTimeout)
	for {
		got, err := summariesApplied(ctx, store)
		if err != nil {
			return Result{}, 0, err
		}
		if got >= want {
			return res, time.Since(start) - res.Elapsed, nil
		}
		if time.Now().After(deadline) {
			return Result{}, 0, fmt.Errorf("bench: order flow: projections applied %d of %d events after %v", got-applied0, res.Events, projectionsCatchUpTimeout)
		}
		select {
		case <-ctx.Done():
			return Result{}, 0, ctx.Err()
		case err := <-runDone:
			return Result{}, 0, errors.Join(fmt.Errorf("bench: order flow: projections stopped"), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func placeAndPay(ctx context.Context, repo *eventstore.Repository) error {
	id := uuid.NewString()
	now := time.Now()
	md := eventstore.CommandMetadata(uuid.NewString(), "bench")
	if _, err := repo.Execute(ctx, id, md, func(o *aggregate.Order) error {
		return o.Place(aggregate.PlaceOrder{
			Customer: "bench@example.com",
			Currency: "EUR",
			Lines:    []aggregate.Line{{SKU: "SKU-1", Quantity: 2, UnitPrice: 1999}, {SKU: "SKU-2", Quantity: 1, UnitPrice: 4500}},
		}, now)
	}); err != nil {
		return fmt.Errorf("place %s: %w", id, err)
	}
	if _, err := repo.Execute(ctx, id, md, func(o *aggregate.Order) error {
		return o.Pay("pay-"+id, 2*1999+4500, now)
	}); err != nil {
		return fmt.Errorf("pay %s: %w", id, err)
	}
	return nil
}

func summariesApplied(ctx context.Context, store *projections.Store) (int64, error) {
	cps, err := store.Checkpoints(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: order flow: %w", err)
	}
	for _, c := range cps {
		if c.Name == projections.OrderSummaries {
			return c.EventsApplied, nil
		}
	}
	return 0, nil
}
