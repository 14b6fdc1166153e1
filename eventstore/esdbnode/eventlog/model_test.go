package eventlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// model is a deliberately naive in-memory log following docs/protocol.md,
// sections 2 and 3 (append, delete and tombstone, reads), for the operations
// the randomized test issues.
type model struct {
	streams map[string]*mStream
	pos     uint64
}

type mStream struct {
	ids   []uuid.UUID // events by revision
	pos   []uint64
	metas []int64 // $tb of each $$X event (all written by Delete or un-delete)
	tomb  bool
}

type mResult struct {
	res     AppendResult
	outcome outcome // okWrite also stands for idempotent success
}

func (m *model) get(x string) *mStream {
	if m.streams[x] == nil {
		m.streams[x] = &mStream{}
	}
	return m.streams[x]
}

func (s *mStream) softDeleted() bool {
	return len(s.metas) > 0 && s.metas[len(s.metas)-1] == math.MaxInt64
}

// check returns (write, idempotent result, outcome).
func (m *model) check(s *mStream, exp Expected, ids []uuid.UUID, noMatch bool) (bool, AppendResult, outcome) {
	if s.tomb {
		return false, AppendResult{}, wantDeleted
	}
	cur := int64(len(s.ids)) - 1
	sd := s.softDeleted()
	switch exp.Kind {
	case ExpectAny, ExpectStreamExists:
		if exp.Kind == ExpectStreamExists && sd {
			return false, AppendResult{}, wantDeleted
		}
		if exp.Kind == ExpectStreamExists && cur < 0 && len(s.metas) == 0 {
			return false, AppendResult{}, wantWEV
		}
		if noMatch || len(ids) == 0 {
			return true, AppendResult{}, okWrite
		}
		r := -1
		for i, id := range s.ids {
			if id == ids[0] {
				r = i
			}
		}
		if r < 0 {
			return true, AppendResult{}, okWrite
		}
		for k, id := range ids {
			if r+k >= len(s.ids) || s.ids[r+k] != id {
				return false, AppendResult{}, wantWEV
			}
		}
		last := r + len(ids) - 1
		return false, AppendResult{Revision: int64(last), Position: s.pos[last]}, okWrite
	default:
		n := int64(-1)
		if exp.Kind == ExpectRevision {
			n = int64(exp.Revision)
		}
		if n == cur {
			return true, AppendResult{}, okWrite
		}
		if n > cur {
			return false, AppendResult{}, wantWEV
		}
		recreate := sd && exp.Kind == ExpectNoStream
		if noMatch || len(ids) == 0 {
			if recreate {
				return true, AppendResult{}, okWrite
			}
			return false, AppendResult{}, wantWEV
		}
		for k, id := range ids {
			i := int(n) + 1 + k
			if i >= len(s.ids) || s.ids[i] != id {
				if k == 0 && recreate {
					return true, AppendResult{}, okWrite
				}
				return false, AppendResult{}, wantWEV
			}
		}
		last := int(n) + len(ids)
		return false, AppendResult{Revision: int64(last), Position: s.pos[last]}, okWrite
	}
}

func (m *model) append(x string, exp Expected, ids []uuid.UUID) mResult {
	s := m.get(x)
	write, res, out := m.check(s, exp, ids, false)
	if !write {
		return mResult{res, out}
	}
	cur := int64(len(s.ids)) - 1
	if len(ids) == 0 {
		return mResult{AppendResult{Revision: cur}, okWrite}
	}
	sd := s.softDeleted()
	for _, id := range ids {
		m.pos++
		s.ids = append(s.ids, id)
		s.pos = append(s.pos, m.pos)
	}
	res = AppendResult{Revision: int64(len(s.ids)) - 1, Position: m.pos}
	if sd {
		m.pos++
		s.metas = append(s.metas, cur+1)
	}
	return mResult{res, okWrite}
}

func (m *model) del(x string, exp Expected, tombstone bool) mResult {
	s := m.get(x)
	write, _, out := m.check(s, exp, nil, true)
	if !write {
		return mResult{AppendResult{}, out}
	}
	if tombstone {
		m.pos++
		s.tomb = true
		return mResult{AppendResult{Position: m.pos}, okWrite}
	}
	if len(s.ids) == 0 && len(s.metas) == 0 {
		return mResult{AppendResult{}, wantWEV}
	}
	m.pos++
	s.metas = append(s.metas, math.MaxInt64)
	return mResult{AppendResult{Position: m.pos}, okWrite}
}

func classify(err error) outcome {
	var wev *WrongExpectedVersionError
	var del *StreamDeletedError
	switch {
	case err == nil:
		return okWrite
	case errors.As(err, &wev):
		return wantWEV
	case errors.As(err, &del):
		return wantDeleted
	default:
		return -1
	}
}

func TestRandomizedAgainstModel(t *testing.T) {
	ops := 3000
	if testing.Short() {
		ops = 800
	}
	rng := rand.New(rand.NewPCG(42, 4242))
	l := openTest(t, Options{FS: vfs.NewMem()})
	m := &model{streams: map[string]*mStream{}}
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	ctx := t.Context()
	counts := map[string]int{}
	for i := range ops {
		x := names[rng.IntN(len(names))]
		s := m.get(x)
		var exp Expected
		switch rng.IntN(4) {
		case 0:
			exp = any_()
		case 1:
			exp = noStream()
		case 2:
			exp = streamExists()
		default:
			exp = rev(uint64(rng.IntN(len(s.ids) + 2)))
		}
		headBefore := l.Head()
		var (
			want mResult
			got  AppendResult
			err  error
			desc string
		)
		switch p := rng.IntN(100); {
		case p < 1:
			desc = fmt.Sprintf("tombstone %s %s", x, exp)
			want = m.del(x, exp, true)
			got.Position, err = l.Tombstone(ctx, x, exp)
		case p < 15:
			desc = fmt.Sprintf("delete %s %s", x, exp)
			want = m.del(x, exp, false)
			got.Position, err = l.Delete(ctx, x, exp)
		default:
			n := rng.IntN(4)
			events := evs(n)
			if len(s.ids) > 0 && n > 0 && rng.IntN(3) == 0 { // re-append existing ids
				start := rng.IntN(len(s.ids))
				for k := range events {
					if start+k < len(s.ids) && rng.IntN(8) > 0 {
						events[k].ID = s.ids[start+k]
					}
				}
			}
			idList := make([]uuid.UUID, n)
			for k := range events {
				idList[k] = events[k].ID
			}
			desc = fmt.Sprintf("append %s %s %d events", x, exp, n)
			want = m.append(x, exp, idList)
			got, err = l.Append(ctx, x, exp, events)
		}
		require.Equal(t, want.outcome, classify(err), "op %d: %s: %v", i, desc, err)
		if err == nil {
			require.Equal(t, want.res, got, "op %d: %s", i, desc)
		}
		require.Equal(t, m.pos, l.Head(), "op %d: %s", i, desc)
		counts[fmt.Sprintf("%.6s/%d", desc, want.outcome)]++
		if err == nil && want.res.Position != 0 && headBefore == l.Head() {
			counts["idempotent"]++
		}
		checkModelRead(t, l, m, names[rng.IntN(len(names))])
	}
	for _, x := range names {
		checkModelRead(t, l, m, x)
	}
	t.Logf("outcomes (0 ok, 1 wev, 2 deleted): %v", counts)
	for _, k := range []string{"append/0", "append/1", "append/2", "delete/0", "delete/1", "tombst/0", "idempotent"} {
		require.Positive(t, counts[k], "the random ops never produced %s", k)
	}
}

func checkModelRead(t *testing.T, l *Log, m *model, x string) {
	t.Helper()
	s := m.get(x)
	got, err := l.ReadStream(t.Context(), x, Forwards, 0, math.MaxInt)
	switch {
	case s.tomb:
		var del *StreamDeletedError
		require.ErrorAs(t, err, &del, x)
		return
	case len(s.ids) == 0 || s.softDeleted():
		require.ErrorIs(t, err, ErrStreamNotFound, x)
		return
	}
	require.NoError(t, err)
	var tb int64
	if len(s.metas) > 0 {
		tb = s.metas[len(s.metas)-1]
	}
	want := []uuid.UUID{}
	for r := tb; r < int64(len(s.ids)); r++ {
		want = append(want, s.ids[r])
	}
	require.Equal(t, want, ids(got), "stream %s", x)
	if len(s.metas) > 0 {
		mr, err := l.ReadStream(t.Context(), "$$"+x, Forwards, 0, 1)
		require.NoError(t, err)
		require.Len(t, mr, 1)
		var obj map[string]int64
		require.NoError(t, json.Unmarshal(mr[0].Data, &obj))
		require.Equal(t, map[string]int64{"$tb": tb}, obj)
	}
}
