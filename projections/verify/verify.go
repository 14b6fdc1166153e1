package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/projections"
)

// Config configures Run.
type Config struct {
	// Projections to verify; nil means all.
	Projections []string
	// Wait bounds the wait for the projections to apply what was read (default 2 minutes).
	Wait time.Duration
	// Poll is the interval of the catch-up checks (default 200 ms).
	Poll time.Duration
	// Progress, if set, is called as the log is read and while waiting.
	Progress func(Progress)
}

// Progress reports a running verification.
type Progress struct {
	Phase    string // "read", "wait", "compare"
	Read     int64  // order events read
	Position uint64 // $all position reached
	// While waiting: the projection waited for, and how many of the order events read it
	// has applied.
	Projection string
	Applied    int64
}

// Report is the outcome of Run.
type Report struct {
	Position    uint64         `json:"position"`    // $all position read up to
	OrderEvents int64          `json:"orderEvents"` // order events up to Position
	Orders      int            `json:"orders"`
	Rows        map[string]int `json:"rows"` // rows compared per table
	// Refused lists the order streams the aggregate refused to fold ("<id>: <reason>").
	Refused     []string     `json:"refused,omitempty"`
	Differences []Difference `json:"differences"`
}

// ErrNotCaughtUp: a projection did not apply the events read within Config.Wait.
var ErrNotCaughtUp = errors.New("verify: the projection did not catch up")

// Run verifies the named projections of store against a replay of the log read through
// client (see the package doc).
func Run(ctx context.Context, store *projections.Store, client *esdb.Client, cfg Config) (Report, error) {
	names := cfg.Projections
	if len(names) == 0 {
		names = projections.Names()
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 2 * time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	progress := cfg.Progress
	if progress == nil {
		progress = func(Progress) {}
	}
	var tables []string
	for _, n := range names {
		ts, err := projections.Tables(n)
		if err != nil {
			return Report{}, err
		}
		tables = append(tables, ts...)
	}

	// 1. Replay: fold every order stream up to the end of $all.
	orders := map[string]*Order{}
	rep := Report{Rows: map[string]int{}}
	pr := Progress{Phase: "read"}
	last, err := projections.ReadOrderEvents(ctx, client, 0, func(ev projections.LogEvent) error {
		id, _ := orderID(ev.Stream)
		o := orders[id]
		if o == nil {
			o = NewOrder(id)
			orders[id] = o
		}
		o.Fold(ev.Revision, ev.Position, ev.Type, ev.Data)
		rep.OrderEvents++
		pr.Read, pr.Position = rep.OrderEvents, ev.Position
		if rep.OrderEvents%10000 == 0 {
			progress(pr)
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	progress(pr)
	rep.Position, rep.Orders = last, len(orders)

	// 2. Wait until every projection has applied as many order events as were read.
	deadline := time.Now().Add(cfg.Wait)
	for _, n := range names {
		for {
			cps, err := store.Checkpoints(ctx)
			if err != nil {
				return Report{}, err
			}
			var applied int64
			for _, c := range cps {
				if c.Name == n {
					applied = c.EventsApplied
				}
			}
			progress(Progress{Phase: "wait", Read: rep.OrderEvents, Position: last, Projection: n, Applied: applied})
			if applied >= rep.OrderEvents {
				break
			}
			if time.Now().After(deadline) {
				return rep, fmt.Errorf("%w: %s applied %d of %d order events within %v", ErrNotCaughtUp, n, applied, rep.OrderEvents, cfg.Wait)
			}
			select {
			case <-ctx.Done():
				return rep, ctx.Err()
			case <-time.After(cfg.Poll): // polling the checkpoint: there is no event to wait on
			}
		}
	}

	// 3. A consistent snapshot; orders whose rows are at another revision (appended since
	// the replay) are folded again from their streams, at the revision of each row.
	progress(Progress{Phase: "compare", Read: rep.OrderEvents, Position: last})
	snap, _, err := store.Snapshot(ctx, tables)
	if err != nil {
		return rep, err
	}
	for _, n := range names {
		ts, _ := projections.Tables(n)
		state := ts[0]
		folded := make([]*Order, 0, len(orders))
		inState := map[string]bool{}
		for _, r := range snap[state] {
			id := r["order_id"]
			inState[id] = true
			rev, err := strconv.ParseInt(r["applied_revision"], 10, 64)
			if err != nil {
				return rep, fmt.Errorf("verify: %s %s: applied_revision %q", state, id, r["applied_revision"])
			}
			o := orders[id]
			if o == nil || (o.Revision != rev && o.Revision < rev) {
				// Appended since the replay: fold the stream up to the row's revision.
				if o, err = readOrder(ctx, client, id, rev); err != nil {
					return rep, err
				}
			}
			folded = append(folded, o)
		}
		for id, o := range orders {
			if !inState[id] {
				folded = append(folded, o) // missing rows show as differences
			}
		}
		for _, t := range ts {
			want, err := Expected(t, folded)
			if err != nil {
				return rep, err
			}
			rep.Rows[t] = len(snap[t])
			rep.Differences = append(rep.Differences, Compare(t, want, snap[t])...)
		}
	}
	for id, o := range orders {
		if o.Err != nil {
			rep.Refused = append(rep.Refused, id+": "+o.Err.Error())
		}
	}
	return rep, nil
}

// readOrder folds order id's stream from the log up to revision rev.
func readOrder(ctx context.Context, client *esdb.Client, id string, rev int64) (*Order, error) {
	o := NewOrder(id)
	stream, err := client.ReadStream(ctx, eventstore.StreamName(id), esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Start{}}, uint64(rev)+1)
	if err != nil {
		return nil, fmt.Errorf("verify: read order %s: %w", id, eventstore.Translate(ctx, "read order stream", err))
	}
	defer stream.Close()
	for {
		re, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return o, nil
		}
		if err != nil {
			return nil, fmt.Errorf("verify: read order %s: %w", id, eventstore.Translate(ctx, "read order stream", err))
		}
		if ev := re.OriginalEvent(); ev != nil {
			o.Fold(ev.EventNumber, ev.Position.Commit, ev.EventType, ev.Data)
		}
	}
}
