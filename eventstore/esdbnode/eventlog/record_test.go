package eventlog

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleRecords() []Record {
	return []Record{
		{Stream: "s", Revision: 0, ID: uuid.New(), Type: "E", IsJSON: true, Created: time.Unix(1700000000, 123).UTC(), Data: []byte(`{}`), Metadata: []byte("m")},
		{Stream: "$$s", Revision: 7, ID: uuid.New(), Type: TypeMetadata, IsJSON: true, Created: time.Unix(0, 0).UTC(), Data: softDeleteData},
		{Stream: "x", Revision: TombstoneRevision, Type: TypeStreamDeleted, Created: time.Unix(-5, 0).UTC()},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range sampleRecords() {
		t.Run(r.Stream, func(t *testing.T) {
			b := encodeRecord(nil, &r)
			var got Record
			require.NoError(t, decodeRecord(42, b, &got))
			r.Position = 42
			assert.Equal(t, r, got)
			id, err := decodeRecordID(b)
			require.NoError(t, err)
			assert.Equal(t, r.ID, id)
		})
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	good := encodeRecord(nil, &sampleRecords()[0])
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version", append([]byte{2}, good[1:]...)},
		{"flags", append([]byte{1, 0x80}, good[2:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(append([]byte{}, good...), 0)},
		{"huge length", append(good[:2+1+16+5], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Record
			err := decodeRecord(1, tt.b, &r)
			assert.True(t, errors.Is(err, ErrCorrupt), "got %v", err)
		})
	}
}

func TestDecodedRecordDoesNotAlias(t *testing.T) {
	r := sampleRecords()[0]
	b := encodeRecord(nil, &r)
	var got Record
	require.NoError(t, decodeRecord(1, b, &got))
	for i := range b {
		b[i] = 0
	}
	assert.Equal(t, "s", got.Stream)
	got.Data = append(got.Data, "more"...)
	assert.Equal(t, "m", string(got.Metadata), "appending to Data leaves Metadata alone")
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range sampleRecords() {
		f.Add(encodeRecord(nil, &r))
	}
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 1, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := decodeRecord(9, b, &r); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not ErrCorrupt: %v", err)
			}
			return
		}
		// A valid record survives encode∘decode unchanged.
		var again Record
		if err := decodeRecord(9, encodeRecord(nil, &r), &again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if r.Stream != again.Stream || r.Revision != again.Revision || r.ID != again.ID || r.Type != again.Type ||
			r.IsJSON != again.IsJSON || !r.Created.Equal(again.Created) || string(r.Data) != string(again.Data) ||
			string(r.Metadata) != string(again.Metadata) || again.Position != 9 {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, again)
		}
	})
}

func TestValueArenaCopiesDoNotOverlap(t *testing.T) {
	var a valueArena
	big := make([]byte, arenaChunk/4+1)
	big[0] = 'B'
	inputs := [][]byte{encodeRecord(nil, &sampleRecords()[0]), big, encodeRecord(nil, &sampleRecords()[1])}
	for range 300 { // several chunks
		inputs = append(inputs, encodeRecord(nil, &sampleRecords()[2]))
	}
	var recs []Record
	for i, in := range inputs {
		c := a.copy(in)
		require.Equal(t, in, c)
		require.Equal(t, len(c), cap(c), "copy %d is capped", i)
		if i != 1 {
			var r Record
			require.NoError(t, decodeRecordInto(uint64(i+1), in, &r, &a))
			recs = append(recs, r)
		}
	}
	// Appending to one record's data must not change the next record.
	want := recs[1]
	recs[0].Data = append(recs[0].Data, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"...)
	require.Equal(t, want, recs[1])
	require.Equal(t, sampleRecords()[1].Stream, recs[1].Stream)
}
