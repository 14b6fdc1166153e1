package projections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderstore/orders/eventstore"
	"golang.org/x/sync/errgroup"
)

// Rebuild sizes. Memory is bounded by three chunks of events (chunk order events each,
// their data as read: one being folded, one queued, one being read) plus, per projection,
// two caches of folded rows (a few hundred bytes each): one being filled, which is handed
// to a flush once it holds cacheOrders orders (so at most cacheOrders+chunk), and one
// being written. A flush writes its rows in order_id order, in transactions of at most
// txRows rows, and is then dropped: the rows of orders that receive more events
// afterwards are read back from the shadow tables. Measured at 1,000,000 events, smaller
// flushes overlap better with reading than larger ones on both SQLite and PostgreSQL.
type rebuildSizes struct {
	chunk, cacheOrders, txRows int
	insertRows                 int // rows per multi-row INSERT on SQLite (0: sqliteMaxRows)
}

var defaultRebuildSizes = rebuildSizes{chunk: 20000, cacheOrders: 20000, txRows: 20000}

const (
	rebuildPage = 8192 // events per ReadAll request
	// rebuildCacheKiB is SQLite's page cache during a rebuild (sqliteCacheKiB otherwise).
	rebuildCacheKiB = 256 << 10
)

// shadowSuffix is appended to a table's name for its rebuild shadow.
const shadowSuffix = "_rebuild"

// Progress reports a running rebuild.
type Progress struct {
	Projections  []string      `json:"projections"`
	Phase        string        `json:"phase"` // "replay", "tail" (final catch-up under the lock), "done"
	Read         int64         `json:"read"`  // events of $all read (all streams)
	Applied      int64         `json:"applied"`
	Position     uint64        `json:"position"`     // $all position reached
	HeadPosition uint64        `json:"headPosition"` // last $all position when the rebuild started
	Elapsed      time.Duration `json:"elapsedNs"`
	Rate         float64       `json:"eventsPerSecond"` // events read per second so far
}

// Fraction is how far Position is between 0 and HeadPosition, in [0, 1]. (On a real node
// positions are byte offsets, so this is a fraction of bytes, not of events.)
func (p Progress) Fraction() float64 {
	if p.HeadPosition == 0 {
		return 1
	}
	return min(1, float64(p.Position)/float64(p.HeadPosition))
}

// RebuildResult is what a finished rebuild swapped in.
type RebuildResult struct {
	Projections   []string      `json:"projections"`
	Read          int64         `json:"read"`
	EventsApplied int64         `json:"eventsApplied"` // order events in each rebuilt model
	Position      uint64        `json:"position"`
	Elapsed       time.Duration `json:"elapsedNs"`
}

// Rebuild replays $all from position zero (a catch-up read through client, not a persistent
// subscription) into fresh shadow tables ("<table>_rebuild") of the named projections while
// the live tables keep serving and the live consumers keep writing them. Once the replay
// reaches the end of the log it takes the write lock (SQLite: the immediate write
// transaction; PostgreSQL: ACCESS EXCLUSIVE locks on the live tables), so live writers
// wait; it reads and applies the remaining tail, drops the live tables, renames the shadows
// into their place and records the checkpoint, all in that one transaction. The live
// consumers then carry on against the new tables; what they deliver again is a duplicate
// and ignored. A failed or cancelled rebuild leaves the live tables untouched (the
// leftover shadows are dropped by the next rebuild). progress (may be nil) is called after
// every applied batch and at the end.
//
// On PostgreSQL a second rebuild of the same projection fails with ErrRebuildRunning; on
// SQLite rebuilds are not guarded against each other and must not run concurrently.
func (s *Store) Rebuild(ctx context.Context, client *esdb.Client, names []string, progress func(Progress)) (RebuildResult, error) {
	if len(names) == 0 {
		names = Names()
	}
	var projs []*projection
	for _, n := range names {
		p, err := lookup(n)
		if err != nil {
			return RebuildResult{}, err
		}
		projs = append(projs, p)
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	if s.d == dialectPostgres {
		conn, err := s.w.Conn(ctx)
		if err != nil {
			return RebuildResult{}, fmt.Errorf("projections: rebuild: %w", err)
		}
		defer conn.Close()
		for _, n := range names {
			var ok bool
			if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock("+lockKeySQL+")", lockKey("rebuild/"+n)).Scan(&ok); err != nil {
				return RebuildResult{}, fmt.Errorf("projections: rebuild lock: %w", err)
			}
			if !ok {
				return RebuildResult{}, fmt.Errorf("%w: %s", ErrRebuildRunning, n)
			}
			defer func() {
				_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+lockKeySQL+")", lockKey("rebuild/"+n))
			}()
		}
	}

	sz := s.rebuildSizes
	if sz == (rebuildSizes{}) {
		sz = defaultRebuildSizes
	}
	gen := strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatUint(uint64(mrand.Uint32()), 36)
	indexes, err := s.createShadows(ctx, projs, gen)
	if err != nil {
		return RebuildResult{}, err
	}
	if s.d == dialectSQLite {
		// A larger page cache for the bulk load (the shadows' B-trees outgrow the usual
		// one on large logs); the usual size is restored when the rebuild ends.
		if _, err := s.w.ExecContext(ctx, "PRAGMA cache_size = "+strconv.Itoa(-rebuildCacheKiB)); err != nil {
			return RebuildResult{}, fmt.Errorf("projections: rebuild: %w", err)
		}
		defer func() {
			_, _ = s.w.ExecContext(context.WithoutCancel(ctx), "PRAGMA cache_size = "+strconv.Itoa(-sqliteCacheKiB))
		}()
	}
	head, err := headPosition(ctx, client)
	if err != nil {
		return RebuildResult{}, err
	}

	started := time.Now()
	pr := Progress{Projections: names, Phase: "replay", HeadPosition: head}
	var prMu sync.Mutex // pr: the reader counts, the applier reports
	var applied int64
	var lastApplied uint64
	caches := make([]map[string]*orderRow, len(projs))
	for i := range caches {
		caches[i] = map[string]*orderRow{}
	}
	report := func() {
		prMu.Lock()
		defer prMu.Unlock()
		pr.Elapsed = time.Since(started)
		if secs := pr.Elapsed.Seconds(); secs > 0 {
			pr.Rate = float64(pr.Read) / secs
		}
		pr.Applied = applied
		progress(pr)
	}
	deltas := make([]map[[2]string][]int64, len(projs))
	seenUnknown := map[string]bool{}
	// decode decodes a chunk once for every projection (unknown types are logged once).
	decode := func(buf []event) ([]decoded, error) {
		evs, err := decodeAll(buf, func(t string) {
			if !seenUnknown[t] {
				seenUnknown[t] = true
				s.log.Warn("rebuild skips an unknown event type: the read model does not reflect it", "type", t)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("projections: rebuild: %w", err)
		}
		return evs, nil
	}
	var flushing []map[string]*orderRow // the caches an unfinished flush is writing
	// fold applies evs to every projection through in(i), folded into the cached rows.
	// Deferred (the replay): into the caches and deltas only, rows of orders flushed
	// earlier loaded through in(i); flush writes them. Otherwise (the tail): written
	// through in(i) at once.
	fold := func(ctx context.Context, evs []decoded, deferred bool, in func(i int, fn func(x *execer) error) error) error {
		if len(evs) == 0 {
			return nil
		}
		counts := make([]int64, len(projs))
		g, gctx := errgroup.WithContext(ctx)
		for i, p := range projs {
			g.Go(func() error {
				return in(i, func(x *execer) error {
					a := newApplier(x, p, shadowName)
					a.fresh, a.cache = true, caches[i]
					a.deferred, a.deltas = deferred, deltas[i]
					if flushing != nil {
						a.prev = flushing[i]
					}
					c, _, err := a.apply(gctx, evs)
					if err != nil {
						return fmt.Errorf("projections: rebuild %s: %w", p.name, err)
					}
					counts[i], deltas[i] = c, a.deltas
					if !deferred && len(a.cache) > sz.cacheOrders {
						clear(a.cache)
					}
					return nil
				})
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		applied += counts[0] // every projection applies every order event
		lastApplied = max(lastApplied, evs[len(evs)-1].Position)
		report()
		return nil
	}
	// flush writes rows and deltas (one cache of each projection, in order_id order, in
	// transactions of at most sz.txRows rows, so that live consumers get the writer in
	// between). It only reads them: the next chunks are folded meanwhile.
	flush := func(ctx context.Context, rows []map[string]*orderRow, deltas []map[[2]string][]int64) error {
		g, gctx := errgroup.WithContext(ctx)
		for i, p := range projs {
			g.Go(func() error {
				sorted := slices.SortedFunc(maps.Values(rows[i]), func(a, b *orderRow) int { return strings.Compare(a.id, b.id) })
				for start := 0; start == 0 || start < len(sorted); start += sz.txRows {
					part := sorted[start:min(len(sorted), start+sz.txRows)]
					var d map[[2]string][]int64
					if start+sz.txRows >= len(sorted) {
						d = deltas[i]
					}
					if err := s.inBulkTx(gctx, func(x *execer) error {
						a := newApplier(x, p, shadowName)
						a.maxRows = sz.insertRows
						return a.write(gctx, part, d)
					}); err != nil {
						return fmt.Errorf("projections: rebuild %s: %w", p.name, err)
					}
				}
				return nil
			})
		}
		return g.Wait()
	}
	// collect gathers order events into buf and hands each full chunk (sz.chunk events)
	// to onFull; the caller hands over what is left in buf when the read ends.
	var buf []event
	collect := func(onFull func([]event) error) func(*esdb.RecordedEvent) (bool, error) {
		return func(ev *esdb.RecordedEvent) (bool, error) {
			prMu.Lock()
			pr.Read++
			pr.Position = ev.Position.Commit
			prMu.Unlock()
			if _, ok := orderID(ev.StreamID); !ok {
				return false, nil
			}
			buf = append(buf, event{Stream: ev.StreamID, Revision: ev.EventNumber, Position: ev.Position.Commit, Type: ev.EventType, Data: ev.Data})
			if len(buf) >= sz.chunk {
				full := buf
				buf = make([]event, 0, sz.chunk)
				return true, onFull(full)
			}
			return true, nil
		}
	}

	// Phase 1: replay without any lock. Chunks are decoded by the reader and folded into
	// the caches, the projections concurrently. Whenever sz.cacheOrders orders are cached
	// the caches are handed to a flush, which writes them in bulk while the next chunks are
	// folded into fresh caches (on PostgreSQL the projections' transactions overlap;
	// SQLite's single writer connection serialises them); one flush at a time. Reading
	// $all, folding and writing overlap: the reader fills the next chunk while the previous
	// one is folded (at most two chunks in memory besides the one being read), and at most
	// two caches per projection are held (one being filled, one being written).
	chunks := make(chan []decoded, 1)
	var last uint64
	pipe, pctx := errgroup.WithContext(ctx)
	// Rows of orders written by an earlier flush are read back from the committed shadows.
	load := func(_ int, fn func(x *execer) error) error { return fn(&execer{d: s.d, tx: s.r}) }
	pipe.Go(func() error {
		var done chan error // the flush under way
		wait := func() error {
			if done == nil {
				return nil
			}
			err := <-done
			done, flushing = nil, nil
			return err
		}
		defer func() { _ = wait() }()
		for c := range chunks {
			if err := fold(pctx, c, true, load); err != nil {
				return err
			}
			if len(caches[0]) < sz.cacheOrders {
				continue
			}
			if err := wait(); err != nil {
				return err
			}
			rows, ds := caches, deltas
			caches, deltas, flushing = make([]map[string]*orderRow, len(projs)), make([]map[[2]string][]int64, len(projs)), rows
			for i := range caches {
				caches[i] = map[string]*orderRow{}
			}
			done = make(chan error, 1)
			go func() { done <- flush(pctx, rows, ds) }()
		}
		if err := wait(); err != nil {
			return err
		}
		if err := flush(pctx, caches, deltas); err != nil {
			return err
		}
		for i := range caches {
			clear(caches[i])
			deltas[i] = nil
		}
		return nil
	})
	pipe.Go(func() error {
		defer close(chunks)
		send := func(c []event) error {
			evs, err := decode(c)
			if err != nil {
				return err
			}
			select {
			case chunks <- evs:
				return nil
			case <-pctx.Done():
				return context.Cause(pctx)
			}
		}
		var err error
		last, _, err = readAll(pctx, client, 0, rebuildPage, collect(send))
		if err != nil {
			return err
		}
		if len(buf) > 0 {
			rest := buf
			buf = nil
			return send(rest)
		}
		return nil
	})
	if err := pipe.Wait(); err != nil {
		return RebuildResult{}, err
	}
	// The secondary indexes, built once over the loaded shadows (faster than keeping them
	// up to date row by row), before the lock.
	if err := s.execAll(ctx, indexes); err != nil {
		return RebuildResult{}, fmt.Errorf("projections: rebuild: index shadows: %w", err)
	}

	// Phase 2: under the write lock, the tail, then the swap.
	prMu.Lock()
	pr.Phase = "tail"
	prMu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return RebuildResult{}, fmt.Errorf("projections: rebuild: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if s.d == dialectPostgres {
		var live []string
		for _, p := range projs {
			for _, t := range p.tables {
				live = append(live, t.name)
			}
		}
		if _, err := tx.ExecContext(ctx, "LOCK TABLE "+strings.Join(live, ", ")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return RebuildResult{}, fmt.Errorf("projections: rebuild: lock live tables: %w", err)
		}
	}
	// One transaction: the projections take turns on it.
	var txMu sync.Mutex
	applyInTx := func(c []event) error {
		evs, err := decode(c)
		if err != nil {
			return err
		}
		return fold(ctx, evs, false, func(_ int, fn func(x *execer) error) error {
			txMu.Lock()
			defer txMu.Unlock()
			return fn(&execer{d: s.d, tx: tx})
		})
	}
	last, _, err = readAll(ctx, client, last, rebuildPage, collect(applyInTx))
	if err != nil {
		return RebuildResult{}, err
	}
	if err := applyInTx(buf); err != nil {
		return RebuildResult{}, err
	}
	now := formatTime(s.now())
	for _, p := range projs {
		for _, t := range p.tables {
			if _, err := tx.ExecContext(ctx, "DROP TABLE "+t.name); err != nil {
				return RebuildResult{}, fmt.Errorf("projections: rebuild: swap %s: %w", t.name, err)
			}
			if _, err := tx.ExecContext(ctx, "ALTER TABLE "+shadowName(t.name)+" RENAME TO "+t.name); err != nil {
				return RebuildResult{}, fmt.Errorf("projections: rebuild: swap %s: %w", t.name, err)
			}
		}
		var lastAt any
		if applied > 0 {
			lastAt = now
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO projection_positions (name, position, events_applied, last_applied_at, rebuilt_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET position = excluded.position, events_applied = excluded.events_applied,
	last_applied_at = excluded.last_applied_at, rebuilt_at = excluded.rebuilt_at`),
			p.name, int64(lastApplied), applied, lastAt, now); err != nil {
			return RebuildResult{}, fmt.Errorf("projections: rebuild: checkpoint %s: %w", p.name, err)
		}
	}
	// The replay read the whole log: its count of order events is the log's.
	if err := s.recordLogHead(ctx, tx, max(last, pr.Position), applied); err != nil {
		return RebuildResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return RebuildResult{}, fmt.Errorf("projections: rebuild: swap: %w", err)
	}
	pr.Phase = "done"
	pr.Position = max(pr.Position, last)
	report()
	return RebuildResult{Projections: names, Read: pr.Read, EventsApplied: applied, Position: lastApplied, Elapsed: pr.Elapsed}, nil
}

func shadowName(t string) string { return t + shadowSuffix }

// decodeAll decodes the order events of evs, in their order; unknown is called with the
// type of each event of an unknown type.
func decodeAll(evs []event, unknown func(eventType string)) ([]decoded, error) {
	out := make([]decoded, 0, len(evs))
	for _, ev := range evs {
		id, ok := orderID(ev.Stream)
		if !ok {
			continue
		}
		e, known, err := decodeEvent(ev)
		if err != nil {
			return nil, err
		}
		if !known {
			unknown(ev.Type)
		}
		out = append(out, decoded{event: ev, id: id, e: e})
	}
	return out, nil
}

// inBulkTx runs fn in a transaction of its own. On PostgreSQL the transaction is begun by
// hand on a dedicated connection, so that fn's inserts into the shadows can use COPY.
func (s *Store) inBulkTx(ctx context.Context, fn func(x *execer) error) error {
	if s.d != dialectPostgres {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("projections: rebuild: %w", err)
		}
		defer func() { _ = tx.Rollback() }()
		if err := fn(&execer{d: s.d, tx: tx}); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("projections: rebuild: %w", err)
		}
		return nil
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("projections: rebuild: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("projections: rebuild: %w", err)
	}
	rollback := func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }
	if err := fn(&execer{d: s.d, tx: conn, conn: conn}); err != nil {
		rollback()
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		rollback()
		return fmt.Errorf("projections: rebuild: %w", err)
	}
	return nil
}

// createShadows drops leftover shadows and creates fresh, empty ones without their secondary
// indexes, whose statements it returns (the rebuild creates them once the shadows are loaded).
func (s *Store) createShadows(ctx context.Context, projs []*projection, gen string) ([]string, error) {
	var tables, indexes []string
	for _, p := range projs {
		for _, t := range p.tables {
			tables = append(tables, "DROP TABLE IF EXISTS "+shadowName(t.name))
			for _, stmt := range t.create(shadowName(t.name), gen) {
				if strings.HasPrefix(stmt, "CREATE INDEX ") {
					indexes = append(indexes, stmt)
				} else {
					tables = append(tables, stmt)
				}
			}
		}
	}
	if err := s.execAll(ctx, tables); err != nil {
		return nil, fmt.Errorf("projections: rebuild: create shadows: %w", err)
	}
	return indexes, nil
}

// execAll runs stmts in one transaction on the writer.
func (s *Store) execAll(ctx context.Context, stmts []string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// headPosition is the commit position of the last event in $all (0 for an empty log).
func headPosition(ctx context.Context, client *esdb.Client) (uint64, error) {
	stream, err := client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrLog, eventstore.Translate(ctx, "read the head of $all", err))
	}
	defer stream.Close()
	re, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrLog, eventstore.Translate(ctx, "read the head of $all", err))
	}
	if ev := re.OriginalEvent(); ev != nil {
		return ev.Position.Commit, nil
	}
	return 0, nil
}
