package projections

import (
	"slices"
	"strings"
)

type unknownKey struct{ projection, eventType string }

// UnknownEvents is how many events of one type this program does not know a projection
// applied (advancing the order's revision and nothing else) since the store was opened.
type UnknownEvents struct {
	Projection string `json:"projection"`
	Type       string `json:"type"`
	Count      uint64 `json:"count"`
}

// noteUnknown counts an event of an unknown type and logs the type the first time.
func (s *Store) noteUnknown(projection, eventType string) {
	k := unknownKey{projection, eventType}
	s.unknownMu.Lock()
	n := s.unknown[k]
	s.unknown[k] = n + 1
	s.unknownMu.Unlock()
	if n == 0 {
		s.log.Warn("projection skips an unknown event type: the read model does not reflect it",
			"projection", projection, "type", eventType)
	}
}

// UnknownEventTypes returns the counts of unknown event types applied, by projection and
// type, sorted.
func (s *Store) UnknownEventTypes() []UnknownEvents {
	s.unknownMu.Lock()
	out := make([]UnknownEvents, 0, len(s.unknown))
	for k, n := range s.unknown {
		out = append(out, UnknownEvents{Projection: k.projection, Type: k.eventType, Count: n})
	}
	s.unknownMu.Unlock()
	slices.SortFunc(out, func(a, b UnknownEvents) int {
		if c := strings.Compare(a.Projection, b.Projection); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})
	return out
}
