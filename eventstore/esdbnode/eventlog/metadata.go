package eventlog

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Metadata keys the log interprets.
const (
	metaMaxAge   = "$maxAge"
	metaMaxCount = "$maxCount"
	metaTB       = "$tb"
	metaPrefix   = "$$"
)

// softDeleteData is the exact data of the metadata event Delete writes.
var softDeleteData = []byte(`{"$tb":9223372036854775807}`)

// metastreamOf returns "$$"+stream.
func metastreamOf(stream string) string { return metaPrefix + stream }

// originalOf returns X for "$$X" and ok true; ok false for other names.
func originalOf(stream string) (string, bool) {
	if len(stream) > len(metaPrefix) && strings.HasPrefix(stream, metaPrefix) {
		return stream[len(metaPrefix):], true
	}
	return "", false
}

// parseMetadata returns the effective metadata an event of $$X stands for:
// the zero value unless the event is JSON and a JSON object whose known keys
// hold valid integers. The result does not alias data.
func parseMetadata(isJSON bool, data []byte) StreamMetadata {
	if !isJSON || len(bytes.TrimSpace(data)) == 0 {
		return StreamMetadata{}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return StreamMetadata{}
	}
	var m StreamMetadata
	if raw, ok := obj[metaMaxAge]; ok && !isNull(raw) {
		n, ok := parseInt(raw)
		if !ok || n <= 0 {
			return StreamMetadata{}
		}
		d := time.Duration(math.MaxInt64)
		if n < math.MaxInt64/int64(time.Second) {
			d = time.Duration(n) * time.Second
		}
		m.MaxAge = &d
	}
	if raw, ok := obj[metaMaxCount]; ok && !isNull(raw) {
		n, ok := parseInt(raw)
		if !ok || n <= 0 {
			return StreamMetadata{}
		}
		m.MaxCount = &n
	}
	if raw, ok := obj[metaTB]; ok && !isNull(raw) {
		n, ok := parseInt(raw)
		if !ok || n < 0 {
			return StreamMetadata{}
		}
		m.TruncateBefore = &n
	}
	m.Raw = bytes.Clone(data)
	return m
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// parseInt accepts a JSON integer literal (no fraction, no exponent) that
// fits an int64.
func parseInt(raw json.RawMessage) (int64, bool) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	return n, err == nil
}

// softDeleted reports whether m marks its stream as soft-deleted.
func (m StreamMetadata) softDeleted() bool {
	return m.TruncateBefore != nil && *m.TruncateBefore == int64(TombstoneRevision)
}

// withTruncateBefore returns raw (a JSON object, or nothing) with "$tb" set
// to tb, the metadata event EventStoreDB writes to un-delete a stream.
func withTruncateBefore(raw []byte, tb int64) []byte {
	obj := map[string]json.RawMessage{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			obj = map[string]json.RawMessage{}
		}
	}
	obj[metaTB] = json.RawMessage(strconv.FormatInt(tb, 10))
	out, err := json.Marshal(obj)
	if err != nil { // cannot happen: every value is valid JSON
		return []byte(`{"$tb":` + strconv.FormatInt(tb, 10) + `}`)
	}
	return out
}

// visibility is the read-time window of a stream.
type visibility struct {
	minRev int64     // events below are hidden ($maxCount, $tb)
	cutoff time.Time // events created before are hidden ($maxAge); zero: none
}

// visibilityOf computes the window for a stream whose last revision is last.
func visibilityOf(m StreamMetadata, last int64, now time.Time) visibility {
	var v visibility
	if m.MaxCount != nil {
		if lo := last - *m.MaxCount + 1; lo > v.minRev {
			v.minRev = lo
		}
	}
	if m.TruncateBefore != nil && *m.TruncateBefore > v.minRev {
		v.minRev = *m.TruncateBefore
	}
	if m.MaxAge != nil {
		v.cutoff = now.Add(-*m.MaxAge)
	}
	return v
}

// visible reports whether the record with this revision and creation time
// passes the window.
func (v visibility) visible(rev uint64, created time.Time) bool {
	if rev > uint64(math.MaxInt64) || int64(rev) < v.minRev {
		return false
	}
	return v.cutoff.IsZero() || !created.Before(v.cutoff)
}
