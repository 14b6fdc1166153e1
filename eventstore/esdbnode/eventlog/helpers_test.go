package eventlog

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// fakeClock is an injected clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openTest opens a log in a fresh directory (real disk unless opts.FS is
// set) and closes it at cleanup.
func openTest(t testing.TB, opts Options) *Log {
	t.Helper()
	l, err := Open(t.TempDir(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })
	return l
}

func ev(typ string) Proposed {
	return Proposed{ID: uuid.New(), Type: typ, IsJSON: true, Data: []byte(`{"n":1}`), Metadata: []byte("m")}
}

func evs(n int) []Proposed {
	out := make([]Proposed, n)
	for i := range out {
		out[i] = ev("E")
	}
	return out
}

func metaEv(data string) Proposed {
	return Proposed{ID: uuid.New(), Type: TypeMetadata, IsJSON: true, Data: []byte(data)}
}

func any_() Expected              { return Expected{Kind: ExpectAny} }
func noStream() Expected          { return Expected{Kind: ExpectNoStream} }
func streamExists() Expected      { return Expected{Kind: ExpectStreamExists} }
func rev(n uint64) Expected       { return Expected{Kind: ExpectRevision, Revision: n} }
func ids(rs []Record) []uuid.UUID { return mapRecs(rs, func(r Record) uuid.UUID { return r.ID }) }
func revs(rs []Record) []uint64   { return mapRecs(rs, func(r Record) uint64 { return r.Revision }) }
func poss(rs []Record) []uint64   { return mapRecs(rs, func(r Record) uint64 { return r.Position }) }

func mapRecs[T any](rs []Record, f func(Record) T) []T {
	out := make([]T, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

// mustAppend appends and fails the test on error.
func mustAppend(t testing.TB, l *Log, stream string, exp Expected, events ...Proposed) AppendResult {
	t.Helper()
	res, err := l.Append(t.Context(), stream, exp, events)
	require.NoError(t, err)
	return res
}
