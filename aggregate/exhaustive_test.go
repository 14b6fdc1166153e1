package aggregate

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestEveryEventType is the exhaustiveness check of the event types: Go has no closed sum
// types, so a new type added to EventTypes (the decoders list) fails here until it has a
// sample below, a golden file of its encoding, an encoding (eventValue), and a transition
// (canApply and apply). The subscribers check their own handling against EventTypes too.
func TestEveryEventType(t *testing.T) {
	samples := map[string]struct {
		before []Event // a history the event may follow
		event  Event
		status Status // the order's status after it
	}{
		TypeOrderPlaced:    {nil, placed(), StatusPlaced},
		TypeOrderPaid:      {[]Event{placed()}, paid("pay_1"), StatusPaid},
		TypeOrderShipped:   {[]Event{placed(), paid("pay_1")}, shipped(), StatusShipped},
		TypeOrderCancelled: {[]Event{placed()}, cancelled("changed my mind"), StatusCancelled},
	}
	for _, typ := range EventTypes() {
		t.Run(typ, func(t *testing.T) {
			s, ok := samples[typ]
			if !ok {
				t.Fatalf("no sample for %s: add one here, a case to canApply and apply, and a golden file", typ)
			}
			if got := s.event.EventType(); got != typ {
				t.Fatalf("sample's EventType() = %q", got)
			}
			if _, err := os.Stat(filepath.Join("testdata", typ+".golden.json")); err != nil {
				t.Errorf("no golden encoding (go test -update writes it): %v", err)
			}
			data, err := EncodeEvent(s.event)
			if err != nil {
				t.Fatalf("EncodeEvent: %v", err)
			}
			back, err := DecodeEvent(typ, data)
			if err != nil || !reflect.DeepEqual(back, s.event) {
				t.Fatalf("DecodeEvent(EncodeEvent(e)) = %#v, %v; want %#v", back, err, s.event)
			}
			o, err := Load(orderID, append(append([]Event(nil), s.before...), s.event))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if o.Status() != s.status {
				t.Errorf("status after %s = %q, want %q", typ, o.Status(), s.status)
			}
		})
	}
	for typ := range samples {
		if !IsEventType(typ) {
			t.Errorf("sample for %s, which is not in EventTypes", typ)
		}
	}
}
