package projections

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// dbtx is what a batch runs its SQL on: a *sql.Tx, or a *sql.Conn inside a transaction
// begun by hand (so that a rebuild can also COPY on the same connection).
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// execer runs dialect-neutral SQL (? placeholders) in a transaction.
type execer struct {
	d  dialect
	tx dbtx
	// conn, when set (PostgreSQL, transaction begun by hand), lets inserts into tables the
	// transaction created or owns alone go through COPY.
	conn *sql.Conn
}

func (x *execer) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := x.tx.ExecContext(ctx, rebind(x.d, query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Multi-row statement sizes. SQLite takes at most 32766 parameters per statement.
const (
	sqliteMaxParams = 32000
	sqliteMaxRows   = 500
	loadChunk       = 500 // ids per SQLite IN list
)

// applier applies batches of decoded order events of one projection: it loads the per-order
// rows the batch touches (one query), folds the events into them in memory, writes each
// touched row once (multi-row statements), adds the totals as one delta per key in key
// order, all within the caller's transaction.
type applier struct {
	x      *execer
	p      *projection
	state  string // physical per-order table
	totals string // physical totals table ("" when none)
	// live: several transactions (of several processes) may apply to the same rows at once.
	// The loaded rows are locked in order_id order (PostgreSQL: FOR UPDATE), and every write
	// is conditional on the revision loaded; a write that finds another revision fails the
	// batch with ErrConcurrentUpdate (retryable).
	live bool
	// fresh: the tables hold only rows this applier wrote (a rebuild's shadows, read from
	// $all in order): a stream whose first event here is revision 0 has no row to load.
	fresh bool
	// cache keeps the folded rows across batches (rebuild); nil: every batch loads.
	cache map[string]*orderRow
	// deferred (rebuild, with cache): apply folds into the cache and adds the totals to
	// deltas, and writes nothing; the rebuild's flush writes them later through write.
	deferred bool
	deltas   map[[2]string][]int64
	// prev (deferred): rows being written by an earlier flush, read-only here; a row found
	// there is copied, as stored at its revision.
	prev map[string]*orderRow
	// maxRows: rows per multi-row INSERT on SQLite (0: sqliteMaxRows; tests make it small).
	maxRows int
}

func newApplier(x *execer, p *projection, tn func(string) string) *applier {
	a := &applier{x: x, p: p, state: tn(p.state.table)}
	if p.totals != nil {
		a.totals = tn(p.totals.table)
	}
	return a
}

// apply applies evs (order events, each stream's in revision order) and returns how many
// changed the model and the highest position among those. A fold error (ErrOutOfOrder,
// ErrMalformedEvent) fails the whole batch, writing nothing.
func (a *applier) apply(ctx context.Context, evs []decoded) (int64, uint64, error) {
	rows := make(map[string]*orderRow)
	var load []string
	for _, ev := range evs {
		if _, ok := rows[ev.id]; ok {
			continue
		}
		if r, ok := a.cache[ev.id]; ok {
			rows[ev.id] = r
			continue
		}
		if r, ok := a.prev[ev.id]; ok {
			c := *r
			c.stored = c.rev
			rows[ev.id] = &c
			continue
		}
		rows[ev.id] = nil
		if !a.fresh || ev.Revision != 0 {
			load = append(load, ev.id)
		}
	}
	if err := a.load(ctx, load, rows); err != nil {
		return 0, 0, fmt.Errorf("load %s: %w", a.state, err)
	}
	// Work on copies, so that a failed batch leaves the cache as it was. Deferred: on the
	// cached rows themselves (a failure ends the rebuild).
	work := make(map[string]*orderRow, len(rows))
	for id, r := range rows {
		switch {
		case r == nil:
			work[id] = newOrderRow(id)
		case a.deferred:
			work[id] = r
		default:
			c := *r
			work[id] = &c
		}
	}
	deltas := a.deltas
	if !a.deferred || deltas == nil {
		deltas = map[[2]string][]int64{}
	}
	var applied int64
	var maxPos uint64
	for _, ev := range evs {
		r := work[ev.id]
		ok, err := fold(r, ev)
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			continue
		}
		applied++
		maxPos = max(maxPos, ev.Position)
		if a.p.totals != nil {
			if k, d, ok := a.p.totals.delta(r, ev.e); ok {
				sum := deltas[k]
				if sum == nil {
					sum = make([]int64, len(d))
					deltas[k] = sum
				}
				for i := range d {
					sum[i] += d[i]
				}
			}
		}
	}
	if a.deferred {
		a.deltas = deltas
		for id, r := range work {
			a.cache[id] = r
		}
		return applied, maxPos, nil
	}
	if err := a.write(ctx, slices.Collect(maps.Values(work)), deltas); err != nil {
		return 0, 0, err
	}
	for id, r := range work {
		r.stored = r.rev
		if a.cache != nil {
			a.cache[id] = r
		}
	}
	return applied, maxPos, nil
}

// write writes the rows that advanced (inserts, then updates, each in order_id order) and
// the deltas. It does not change the rows (a rebuild's flush writes them while the next
// batches are folded); the caller marks them stored.
func (a *applier) write(ctx context.Context, rows []*orderRow, deltas map[[2]string][]int64) error {
	var ins, upd []*orderRow
	for _, r := range rows {
		switch {
		case r.rev <= r.stored:
		case r.stored < 0:
			ins = append(ins, r)
		default:
			upd = append(upd, r)
		}
	}
	byID := func(a, b *orderRow) int { return strings.Compare(a.id, b.id) }
	slices.SortFunc(ins, byID)
	slices.SortFunc(upd, byID)
	if err := a.insert(ctx, ins); err != nil {
		return err
	}
	if err := a.update(ctx, upd); err != nil {
		return err
	}
	return a.addTotals(ctx, deltas)
}

func (a *applier) colNames() []string {
	names := make([]string, len(a.p.state.cols))
	for i, c := range a.p.state.cols {
		names[i] = c.name
	}
	return names
}

// load reads the rows of ids into rows (ids without a row stay nil).
func (a *applier) load(ctx context.Context, ids []string, rows map[string]*orderRow) error {
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	cols := strings.Join(a.colNames(), ", ")
	scan := func(q string, args ...any) error {
		rs, err := a.x.tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			r := &orderRow{}
			if err := rs.Scan(a.p.state.ptrs(r)...); err != nil {
				return err
			}
			r.stored = r.rev
			rows[r.id] = r
		}
		return rs.Err()
	}
	if a.x.d == dialectPostgres {
		q := "SELECT " + cols + " FROM " + a.state + " WHERE order_id = ANY($1::text[]) ORDER BY order_id"
		if a.live {
			q += " FOR UPDATE"
		}
		return scan(q, ids)
	}
	for chunk := range slices.Chunk(ids, loadChunk) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		q := "SELECT " + cols + " FROM " + a.state + " WHERE order_id IN (" + placeholders(len(chunk)) + ")"
		if err := scan(q, args...); err != nil {
			return err
		}
	}
	return nil
}

// insert creates the rows of orders that had none. A row that appeared meanwhile (another
// process applied the same order's first event) fails the batch with ErrConcurrentUpdate.
func (a *applier) insert(ctx context.Context, rows []*orderRow) error {
	if len(rows) == 0 {
		return nil
	}
	cols := a.colNames()
	var n int64
	switch {
	case a.x.conn != nil:
		// COPY: only for tables no other transaction writes (rebuild shadows).
		data := make([][]any, len(rows))
		for i, r := range rows {
			data[i] = copyValues(a.p.state.get(r))
		}
		err := a.x.conn.Raw(func(dc any) error {
			c, ok := dc.(*stdlib.Conn)
			if !ok {
				return fmt.Errorf("COPY needs a pgx connection, have %T", dc)
			}
			var err error
			n, err = c.Conn().CopyFrom(ctx, pgx.Identifier{a.state}, cols, pgx.CopyFromRows(data))
			return err
		})
		if err != nil {
			return fmt.Errorf("copy into %s: %w", a.state, err)
		}
	case a.x.d == dialectPostgres:
		q := "INSERT INTO " + a.state + " (" + strings.Join(cols, ", ") + ") SELECT * FROM " + unnest(a.p.state.cols, 1) +
			" ON CONFLICT (order_id) DO NOTHING"
		c, err := a.x.exec(ctx, q, pgArrays(a.p.state.cols, rows, a.p.state.get)...)
		if err != nil {
			return fmt.Errorf("insert into %s: %w", a.state, err)
		}
		n = c
	default:
		per := min(cmp.Or(a.maxRows, sqliteMaxRows), sqliteMaxParams/len(cols))
		row := "(" + placeholders(len(cols)) + ")"
		query := func(rows int) string {
			return "INSERT INTO " + a.state + " (" + strings.Join(cols, ", ") + ") VALUES " +
				strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ") + " ON CONFLICT (order_id) DO NOTHING"
		}
		// Full chunks share one prepared statement (parsing a statement of per rows costs
		// about as much as running it).
		var full *sql.Stmt
		if len(rows) >= 2*per {
			var err error
			if full, err = a.x.tx.PrepareContext(ctx, query(per)); err != nil {
				return fmt.Errorf("insert into %s: %w", a.state, err)
			}
			defer full.Close()
		}
		args := make([]any, 0, per*len(cols))
		for chunk := range slices.Chunk(rows, per) {
			args = args[:0]
			for _, r := range chunk {
				args = append(args, a.p.state.get(r)...)
			}
			var res sql.Result
			var err error
			if full != nil && len(chunk) == per {
				res, err = full.ExecContext(ctx, args...)
			} else {
				res, err = a.x.tx.ExecContext(ctx, query(len(chunk)), args...)
			}
			if err != nil {
				return fmt.Errorf("insert into %s: %w", a.state, err)
			}
			c, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("insert into %s: %w", a.state, err)
			}
			n += c
		}
	}
	if n != int64(len(rows)) {
		return fmt.Errorf("%w: %d of %d new rows of %s were inserted meanwhile", ErrConcurrentUpdate, int64(len(rows))-n, len(rows), a.state)
	}
	return nil
}

// update writes the rows that advanced, each conditional on the revision it was loaded at.
func (a *applier) update(ctx context.Context, rows []*orderRow) error {
	if len(rows) == 0 {
		return nil
	}
	cols := a.p.state.cols[1:] // order_id is the key
	var n int64
	if a.x.d == dialectPostgres {
		sets := make([]string, len(cols))
		names := make([]string, 0, len(cols)+2)
		names = append(names, "order_id")
		for i, c := range cols {
			sets[i] = c.name + " = v." + c.name
			names = append(names, c.name)
		}
		names = append(names, "stored_revision")
		all := append(slices.Clone(a.p.state.cols), column{"stored_revision", "bigint"})
		get := func(r *orderRow) []any { return append(a.p.state.get(r), r.stored) }
		q := "UPDATE " + a.state + " AS t SET " + strings.Join(sets, ", ") +
			" FROM " + unnest(all, 1) + " AS v(" + strings.Join(names, ", ") + ")" +
			" WHERE t.order_id = v.order_id AND t.applied_revision = v.stored_revision"
		c, err := a.x.exec(ctx, q, pgArrays(all, rows, get)...)
		if err != nil {
			return fmt.Errorf("update %s: %w", a.state, err)
		}
		n = c
	} else {
		sets := make([]string, len(cols))
		for i, c := range cols {
			sets[i] = c.name + " = ?"
		}
		q := "UPDATE " + a.state + " SET " + strings.Join(sets, ", ") + " WHERE order_id = ? AND applied_revision = ?"
		stmt, err := a.x.tx.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("update %s: %w", a.state, err)
		}
		defer stmt.Close()
		for _, r := range rows {
			v := a.p.state.get(r)
			res, err := stmt.ExecContext(ctx, append(v[1:], r.id, r.stored)...)
			if err != nil {
				return fmt.Errorf("update %s: %w", a.state, err)
			}
			c, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("update %s: %w", a.state, err)
			}
			n += c
		}
	}
	if n != int64(len(rows)) {
		return fmt.Errorf("%w: %d of %d rows of %s changed meanwhile", ErrConcurrentUpdate, int64(len(rows))-n, len(rows), a.state)
	}
	return nil
}

// addTotals adds the deltas, one row per key, in key order (so that concurrent batches lock
// the rows in the same order and cannot deadlock).
func (a *applier) addTotals(ctx context.Context, deltas map[[2]string][]int64) error {
	t := a.p.totals
	if t == nil || len(deltas) == 0 {
		return nil
	}
	keys := make([][2]string, 0, len(deltas))
	for k, d := range deltas {
		if slices.ContainsFunc(d, func(v int64) bool { return v != 0 }) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	if len(keys) == 0 {
		return nil
	}
	cols := append([]string{t.keys[0], t.keys[1]}, t.vals...)
	sets := make([]string, len(t.vals))
	for i, v := range t.vals {
		sets[i] = v + " = " + a.totals + "." + v + " + excluded." + v
	}
	head := "INSERT INTO " + a.totals + " (" + strings.Join(cols, ", ") + ") "
	tail := " ON CONFLICT (" + t.keys[0] + ", " + t.keys[1] + ") DO UPDATE SET " + strings.Join(sets, ", ")
	if a.x.d == dialectPostgres {
		arrs := make([]any, len(cols))
		k0, k1 := make([]string, len(keys)), make([]string, len(keys))
		for i, k := range keys {
			k0[i], k1[i] = k[0], k[1]
		}
		arrs[0], arrs[1] = k0, k1
		types := []column{{typ: "text"}, {typ: "text"}}
		for j := range t.vals {
			v := make([]int64, len(keys))
			for i, k := range keys {
				v[i] = deltas[k][j]
			}
			arrs[2+j] = v
			types = append(types, column{typ: "bigint"})
		}
		if _, err := a.x.exec(ctx, head+"SELECT * FROM "+unnest(types, 1)+tail, arrs...); err != nil {
			return fmt.Errorf("add to %s: %w", a.totals, err)
		}
		return nil
	}
	row := "(" + placeholders(len(cols)) + ")"
	for chunk := range slices.Chunk(keys, min(sqliteMaxRows, sqliteMaxParams/len(cols))) {
		args := make([]any, 0, len(chunk)*len(cols))
		for _, k := range chunk {
			args = append(args, k[0], k[1])
			for _, v := range deltas[k] {
				args = append(args, v)
			}
		}
		q := head + "VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", len(chunk)), ", ") + tail
		if _, err := a.x.exec(ctx, q, args...); err != nil {
			return fmt.Errorf("add to %s: %w", a.totals, err)
		}
	}
	return nil
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// unnest is "unnest($k::type[], ...)" for the columns, parameters numbered from k.
func unnest(cols []column, k int) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = "$" + strconv.Itoa(k+i) + "::" + c.typ + "[]"
	}
	return "unnest(" + strings.Join(parts, ", ") + ")"
}

// pgArrays turns rows into one array per column: []int64 for bigint, []*string for text
// (nil for NULL).
func pgArrays(cols []column, rows []*orderRow, get func(*orderRow) []any) []any {
	out := make([]any, len(cols))
	for j, c := range cols {
		if c.typ == "bigint" {
			out[j] = make([]int64, len(rows))
		} else {
			out[j] = make([]*string, len(rows))
		}
	}
	for i, r := range rows {
		for j, v := range get(r) {
			switch v := v.(type) {
			case int64:
				out[j].([]int64)[i] = v
			case string:
				out[j].([]*string)[i] = &v
			case nullString:
				if v.Valid {
					out[j].([]*string)[i] = &v.String
				}
			}
		}
	}
	return out
}

// copyValues makes values COPY can encode (NULL text as nil).
func copyValues(vals []any) []any {
	for i, v := range vals {
		if ns, ok := v.(nullString); ok {
			if ns.Valid {
				vals[i] = ns.String
			} else {
				vals[i] = nil
			}
		}
	}
	return vals
}
