package projections

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/orderstore/orders/internal/testutil/pgtest"
)

// columns describes the columns of table t: name, type, nullability, default (and, on
// SQLite, primary-key rank), in order.
func columns(t *testing.T, s *Store, table string) []string {
	t.Helper()
	q := `SELECT name, type, "notnull", COALESCE(dflt_value, ''), pk FROM pragma_table_info(?) ORDER BY cid`
	if s.d == dialectPostgres {
		q = `SELECT column_name, data_type, is_nullable, COALESCE(column_default, ''), 0 FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`
	}
	rows, err := s.w.QueryContext(t.Context(), q, table)
	if err != nil {
		t.Fatalf("columns of %s: %v", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name, typ, null, def string
		var pk int
		if err := rows.Scan(&name, &typ, &null, &def, &pk); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s null=%s default=%q pk=%d", name, typ, null, def, pk))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("table %s has no columns", table)
	}
	return out
}

// TestMigrationsMatchCurrentSchema: a database migrated from each earlier version (0: a
// fresh one) has every read-model table exactly as the current definitions create it
// (what a rebuild's shadows get), on SQLite and PostgreSQL. A table changed in
// projection.go without a migration, or a migration that does not bring an existing
// database along, fails here.
func TestMigrationsMatchCurrentSchema(t *testing.T) {
	for _, be := range []struct {
		name   string
		newURL func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "schema.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.Schema(t) }},
	} {
		for from := 0; from < SchemaVersion(); from++ {
			t.Run(fmt.Sprintf("%s/from-%d", be.name, from), func(t *testing.T) {
				s, err := open(be.newURL(t))
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if err := s.migrateTo(t.Context(), from); err != nil {
					t.Fatalf("migrate to %d: %v", from, err)
				}
				if err := s.migrate(t.Context()); err != nil {
					t.Fatalf("migrate from %d: %v", from, err)
				}
				var projs []*projection
				for _, n := range Names() {
					projs = append(projs, registry[n])
				}
				indexes, err := s.createShadows(t.Context(), projs, "test")
				if err != nil {
					t.Fatal(err)
				}
				if err := s.execAll(t.Context(), indexes); err != nil {
					t.Fatal(err)
				}
				for _, p := range projs {
					for _, tab := range p.tables {
						migrated, current := columns(t, s, tab.name), columns(t, s, shadowName(tab.name))
						if !slices.Equal(migrated, current) {
							t.Errorf("%s after the migrations:\n%q\ncurrent definition:\n%q", tab.name, migrated, current)
						}
					}
				}
			})
		}
	}
}
