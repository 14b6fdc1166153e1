package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/subscribers"
)

// The read side: how fast the three projections keep up with the writers (live) and
// rebuild from zero, next to a ceiling probe. One implementation serves `orders bench`
// and the projections package's benchmarks.

// ReadSideOptions configures ReadSide.
type ReadSideOptions struct {
	Events      int    // order events appended (orders of 3 events); default 60,000
	Writers     int    // concurrent appenders; default 8
	Rate        int    // live, paced: orders per second; 0: saturated only
	PostgresURL string // "" : SQLite only
	Dir         string // directory for the node and the SQLite files (required)
	Logf        func(format string, args ...any)
}

// LiveResult is one live run: writers appending while the three projections apply.
type LiveResult struct {
	Backend string `json:"backend"`
	Events  int    `json:"events"`
	Writers int    `json:"writers"`
	Rate    int    `json:"ordersPerSecond,omitempty"` // paced; 0: saturated
	// AppendEventsPerSec: events appended per second (first append to last).
	AppendEventsPerSec float64 `json:"appendEventsPerSec"`
	// EventsPerSec: events applied per second by the three projections together, from the
	// first append to the last commit (each event counted once).
	EventsPerSec float64 `json:"eventsPerSec"`
	// MaxLag: the largest number of appended events some projection had not applied yet,
	// sampled every 10 ms.
	MaxLag int64 `json:"maxLag"`
	// P50 and P99: from the start of an order's append to the commit that made it visible
	// in order_summaries.
	P50 time.Duration `json:"p50Ns"`
	P99 time.Duration `json:"p99Ns"`
}

// RebuildResult is one rebuild of all three projections from zero.
type RebuildResult struct {
	Backend      string        `json:"backend"`
	Events       int64         `json:"events"`
	EventsPerSec float64       `json:"eventsPerSec"`
	Elapsed      time.Duration `json:"elapsedNs"`
}

// ReadSideReport is ReadSide's outcome.
type ReadSideReport struct {
	Events  int             `json:"events"`
	Live    []LiveResult    `json:"live"`
	Rebuild []RebuildResult `json:"rebuild"`
	// Ceiling: the official client reading $all into SQLite, one upsert per event and a
	// checkpoint per 1,000-event transaction, nothing else; measured in the same run.
	Ceiling     RebuildResult `json:"ceiling"`
	LoadAverage string        `json:"loadAverage"`
}

// ReadSide runs the live benchmark (saturated, and paced if Rate is set) and the rebuild
// benchmark on SQLite and, if PostgresURL is set, on PostgreSQL, each against a fresh
// embedded node, with the ceiling probe after the rebuilds on the same log.
func ReadSide(ctx context.Context, o ReadSideOptions) (*ReadSideReport, error) {
	if o.Events <= 0 {
		o.Events = 60000
	}
	if o.Writers <= 0 {
		o.Writers = 8
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	rep := &ReadSideReport{Events: o.Events}
	type backend struct{ name, url string }
	n := 0
	newDB := func(name string) (backend, func(), error) {
		n++
		if name == "sqlite" {
			return backend{name, filepath.Join(o.Dir, fmt.Sprintf("readside-%d.db", n))}, func() {}, nil
		}
		u, drop, err := PostgresSchema(ctx, o.PostgresURL)
		return backend{name, u}, drop, err
	}
	names := []string{"sqlite"}
	if o.PostgresURL != "" {
		names = append(names, "postgres")
	}
	rates := []int{0}
	if o.Rate > 0 {
		rates = append(rates, o.Rate)
	}
	for _, rate := range rates {
		for _, name := range names {
			err := withNode(ctx, filepath.Join(o.Dir, fmt.Sprintf("node-live-%d-%s", rate, name)), func(srv *esdbnode.Server, client *esdb.Client) error {
				db, drop, err := newDB(name)
				if err != nil {
					return err
				}
				defer drop()
				r, err := Live(ctx, srv.ConnectionString(), client, db.url, o.Events, o.Writers, rate)
				if err != nil {
					return fmt.Errorf("bench: live %s: %w", name, err)
				}
				r.Backend = name
				o.Logf("live %s: %+v", name, r)
				rep.Live = append(rep.Live, r)
				return nil
			})
			if err != nil {
				return rep, err
			}
		}
	}
	err := withNode(ctx, filepath.Join(o.Dir, "node-rebuild"), func(_ *esdbnode.Server, client *esdb.Client) error {
		if err := AppendOrders(ctx, client, o.Events, o.Writers, 0, nil); err != nil {
			return err
		}
		for _, name := range names {
			db, drop, err := newDB(name)
			if err != nil {
				return err
			}
			r, err := Rebuild(ctx, client, db.url)
			drop()
			if err != nil {
				return fmt.Errorf("bench: rebuild %s: %w", name, err)
			}
			r.Backend = name
			o.Logf("rebuild %s: %+v", name, r)
			rep.Rebuild = append(rep.Rebuild, r)
		}
		c, err := RebuildCeiling(ctx, client, filepath.Join(o.Dir, "ceiling.db"))
		if err != nil {
			return fmt.Errorf("bench: ceiling: %w", err)
		}
		o.Logf("ceiling: %+v", c)
		rep.Ceiling = c
		return nil
	})
	rep.LoadAverage = loadAverage()
	return rep, err
}

// withNode runs fn against a fresh embedded node in dir and its client.
func withNode(ctx context.Context, dir string, fn func(*esdbnode.Server, *esdb.Client) error) (err error) {
	srv, err := esdbnode.New(esdbnode.Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.Close()) }()
	client, err := eventstore.Connect(srv.ConnectionString())
	if err != nil {
		return err
	}
	defer client.Close()
	return fn(srv, client)
}

// PostgresSchema creates a fresh schema in the database at base and returns a URL whose
// search_path selects it, and a function that drops it.
func PostgresSchema(ctx context.Context, base string) (string, func(), error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "bench_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = db.Close()
		return "", nil, fmt.Errorf("bench: create schema: %w", err)
	}
	drop := func() {
		_, _ = db.ExecContext(context.WithoutCancel(ctx), "DROP SCHEMA "+schema+" CASCADE")
		_ = db.Close()
	}
	u, err := url.Parse(base)
	if err != nil {
		drop()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// AppendOrders appends orders of three events each (placed, paid, shipped: one append per
// order) until n events are written, with writers concurrent appenders; rate > 0 paces
// them to rate orders per second in all. onAppend, if set, is called with the ids of an
// order's events just before its append, and appended (if set) after it with the number
// of events appended.
func AppendOrders(ctx context.Context, client *esdb.Client, n, writers, rate int, onAppend func(ids []uuid.UUID), appended ...*atomic.Int64) error {
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		tick = t.C
	}
	var next atomic.Int64
	orders := (n + 2) / 3
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for w := range writers {
		wg.Go(func() {
			for {
				if tick != nil {
					select {
					case <-tick: // paced: one order per tick across all writers
					case <-ctx.Done():
						errs <- ctx.Err()
						return
					}
				}
				i := next.Add(1) - 1
				if i >= int64(orders) {
					return
				}
				id := uuid.NewString()
				at := base.Add(time.Duration(i) * time.Minute)
				evs := []aggregate.Event{
					aggregate.OrderPlaced{OrderID: id, Customer: fmt.Sprintf("c%d@example.com", i%1000), Currency: "EUR",
						Lines: []aggregate.Line{{SKU: "sku", Quantity: 1, UnitPrice: 1000 + i%97}}, Total: 1000 + i%97, PlacedAt: at},
					aggregate.OrderPaid{OrderID: id, PaymentRef: "p" + id[:8], Amount: 1000 + i%97, Currency: "EUR", PaidAt: at.Add(time.Minute)},
					aggregate.OrderShipped{OrderID: id, ShippedAt: at.Add(time.Hour)},
				}
				if rem := n - int(i)*3; rem < 3 {
					evs = evs[:rem]
				}
				data := make([]esdb.EventData, len(evs))
				ids := make([]uuid.UUID, len(evs))
				for k, e := range evs {
					ids[k] = uuid.New()
					d, err := eventstore.Encode(ids[k], e, eventstore.CommandMetadata(uuid.NewString(), "bench"))
					if err != nil {
						errs <- err
						return
					}
					data[k] = d
				}
				if onAppend != nil {
					onAppend(ids)
				}
				if _, err := client.AppendToStream(ctx, eventstore.StreamName(id), esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, data...); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, eventstore.Translate(ctx, "append", err))
					return
				}
				for _, a := range appended {
					a.Add(int64(len(evs)))
				}
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

// Live runs the three projections on the database at dbURL (their groups on the node at
// connString) while writers append n events (rate orders/s, 0: as fast as they go), and
// measures both sides.
func Live(ctx context.Context, connString string, client *esdb.Client, dbURL string, n, writers, rate int) (LiveResult, error) {
	res := LiveResult{Events: n, Writers: writers, Rate: rate}
	store, err := projections.Open(ctx, dbURL)
	if err != nil {
		return res, err
	}
	defer store.Close()
	var mu sync.Mutex
	started := make(map[uuid.UUID]time.Time, n)
	var lat []time.Duration
	var lastCommit time.Time
	names := projections.Names()
	applied := make([]atomic.Int64, len(names))
	done := make(chan struct{})
	var doneOnce sync.Once
	r, err := projections.NewRunner(store, subscribers.DialString(connString), projections.RunnerConfig{
		Consumer: subscribers.Config{MaxAttempts: 50, Backoff: func(int) time.Duration { return 5 * time.Millisecond }},
		Wrap: func(name string, h subscribers.BatchHandler) subscribers.BatchHandler {
			i := slices.Index(names, name)
			return func(ctx context.Context, evs []subscribers.Event) error {
				if err := h(ctx, evs); err != nil {
					return err
				}
				now := time.Now()
				mu.Lock()
				if name == projections.OrderSummaries {
					for _, ev := range evs {
						if t0, ok := started[ev.ID]; ok {
							lat = append(lat, now.Sub(t0))
							delete(started, ev.ID)
						}
					}
				}
				lastCommit = now
				mu.Unlock()
				all := true
				for j := range applied {
					if j == i {
						all = applied[j].Add(int64(len(evs))) >= int64(n) && all
					} else {
						all = applied[j].Load() >= int64(n) && all
					}
				}
				if all {
					doneOnce.Do(func() { close(done) })
				}
				return nil
			}
		},
	})
	if err != nil {
		return res, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(rctx) }()
	// The groups are created and connected before the clock starts.
	for {
		all := true
		for _, s := range r.Stats() {
			all = all && s.Connected
		}
		if all {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(10 * time.Millisecond): // polling the consumers' state
		}
	}
	var appended atomic.Int64
	var maxLag atomic.Int64
	sampleDone := make(chan struct{})
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-rctx.Done():
				return
			case <-t.C:
			}
			a := appended.Load()
			for j := range applied {
				if lag := a - applied[j].Load(); lag > maxLag.Load() {
					maxLag.Store(lag)
				}
			}
		}
	}()
	start := time.Now()
	err = AppendOrders(ctx, client, n, writers, rate, func(ids []uuid.UUID) {
		now := time.Now()
		mu.Lock()
		for _, id := range ids {
			started[id] = now
		}
		mu.Unlock()
	}, &appended)
	appendTime := time.Since(start)
	if err != nil {
		return res, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(10 * time.Minute):
		return res, fmt.Errorf("bench: the projections did not apply %d events in 10 minutes", n)
	}
	cancel()
	<-sampleDone
	if err := <-runDone; err != nil {
		return res, err
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		return res, errors.New("bench: no latency measured")
	}
	slices.Sort(lat)
	res.AppendEventsPerSec = float64(n) / appendTime.Seconds()
	res.EventsPerSec = float64(n) / lastCommit.Sub(start).Seconds()
	res.MaxLag = maxLag.Load()
	res.P50, res.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	return res, nil
}

// Rebuild rebuilds the three projections from zero into the database at dbURL.
func Rebuild(ctx context.Context, client *esdb.Client, dbURL string) (RebuildResult, error) {
	store, err := projections.Open(ctx, dbURL)
	if err != nil {
		return RebuildResult{}, err
	}
	defer store.Close()
	res, err := store.Rebuild(ctx, client, nil, nil)
	if err != nil {
		return RebuildResult{}, err
	}
	return RebuildResult{Events: res.EventsApplied, Elapsed: res.Elapsed, EventsPerSec: float64(res.EventsApplied) / res.Elapsed.Seconds()}, nil
}

// RebuildCeiling is the probe a rebuild is measured against: the official client reads $all from
// the start in pages and writes each order event into SQLite with one upsert (synchronous=
// FULL), a checkpoint row per 1,000-event transaction, nothing else.
func RebuildCeiling(ctx context.Context, client *esdb.Client, path string) (RebuildResult, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return RebuildResult{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS events (stream TEXT NOT NULL PRIMARY KEY, revision BIGINT NOT NULL, position BIGINT NOT NULL, type TEXT NOT NULL, data BLOB)",
		"CREATE TABLE IF NOT EXISTS checkpoint (id INTEGER PRIMARY KEY, position BIGINT NOT NULL)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return RebuildResult{}, err
		}
	}
	start := time.Now()
	var n int64
	var tx *sql.Tx
	var stmt *sql.Stmt
	commit := func(pos uint64) error {
		if tx == nil {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO checkpoint (id, position) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET position = excluded.position", int64(pos)); err != nil {
			return err
		}
		err := tx.Commit()
		tx, stmt = nil, nil
		return err
	}
	var last uint64
	for {
		var from esdb.AllPosition = esdb.Start{}
		if last > 0 {
			from = esdb.Position{Commit: last, Prepare: last}
		}
		rs, err := client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: from}, 8192)
		if err != nil {
			return RebuildResult{}, eventstore.Translate(ctx, "read $all", err)
		}
		got := 0
		for {
			re, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return RebuildResult{}, eventstore.Translate(ctx, "read $all", err)
			}
			got++
			ev := re.OriginalEvent()
			if ev == nil || (last > 0 && ev.Position.Commit <= last) {
				continue
			}
			last = ev.Position.Commit
			if len(ev.StreamID) < len(eventstore.StreamPrefix) || ev.StreamID[:len(eventstore.StreamPrefix)] != eventstore.StreamPrefix {
				continue
			}
			if tx == nil {
				if tx, err = db.BeginTx(ctx, nil); err != nil {
					rs.Close()
					return RebuildResult{}, err
				}
				if stmt, err = tx.PrepareContext(ctx, "INSERT INTO events (stream, revision, position, type, data) VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision, position = excluded.position, type = excluded.type, data = excluded.data"); err != nil {
					rs.Close()
					return RebuildResult{}, err
				}
			}
			if _, err := stmt.ExecContext(ctx, ev.StreamID, int64(ev.EventNumber), int64(ev.Position.Commit), ev.EventType, ev.Data); err != nil {
				rs.Close()
				return RebuildResult{}, err
			}
			n++
			if n%1000 == 0 {
				if err := commit(last); err != nil {
					rs.Close()
					return RebuildResult{}, err
				}
			}
		}
		rs.Close()
		if got < 8192 {
			break
		}
	}
	if err := commit(last); err != nil {
		return RebuildResult{}, err
	}
	el := time.Since(start)
	return RebuildResult{Backend: "sqlite", Events: n, Elapsed: el, EventsPerSec: float64(n) / el.Seconds()}, nil
}

// writeMarkdown appends the read-side section (nothing for a nil report).
func (r *ReadSideReport) writeMarkdown(b *strings.Builder) {
	if r == nil {
		return
	}
	fmt.Fprintf(b, "\n### read side: projections live, %s events, load average %s at the end\n\n", rate(float64(r.Events)), r.LoadAverage)
	b.WriteString("| database | writers | paced (orders/s) | append events/s | projections events/s | max lag (events) | p50 visible | p99 visible |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range r.Live {
		paced := "saturated"
		if l.Rate > 0 {
			paced = strconv.Itoa(l.Rate)
		}
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %d | %v | %v |\n", l.Backend, l.Writers, paced, rate(l.AppendEventsPerSec),
			rate(l.EventsPerSec), l.MaxLag, roundLatency(l.P50), roundLatency(l.P99))
	}
	fmt.Fprintf(b, "\n### read side: rebuild from zero, %s events\n\n| what | events/s | took | ratio to ceiling |\n|---|---:|---:|---:|\n", rate(float64(r.Events)))
	for _, x := range append(slices.Clone(r.Rebuild), r.Ceiling) {
		name := "rebuild, three projections, " + x.Backend
		if x == r.Ceiling {
			name = "ceiling: client reading $all into SQLite, one upsert per event"
		}
		ratio := 0.0
		if r.Ceiling.EventsPerSec > 0 {
			ratio = x.EventsPerSec / r.Ceiling.EventsPerSec
		}
		fmt.Fprintf(b, "| %s | %s | %v | %.2f |\n", name, rate(x.EventsPerSec), x.Elapsed.Round(time.Millisecond), ratio)
	}
}
