package aggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current encoding")

// goldenEvents are the samples whose encoding is pinned in testdata: the JSON field names are
// stored data and must never change by accident.
func goldenEvents() []struct {
	name  string
	event Event
} {
	return []struct {
		name  string
		event Event
	}{
		{"OrderPlaced", placed()},
		{"OrderPaid", paid("pay_123")},
		{"OrderShipped", shipped()},
		{"OrderCancelled", cancelled("customer request")},
		{"OrderCancelled_no_reason", cancelled("")},
	}
}

func TestEventTypes(t *testing.T) {
	for _, tc := range []struct {
		event Event
		want  string
	}{
		{OrderPlaced{}, "OrderPlaced"},
		{OrderPaid{}, "OrderPaid"},
		{OrderShipped{}, "OrderShipped"},
		{OrderCancelled{}, "OrderCancelled"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.event.EventType(); got != tc.want {
				t.Fatalf("EventType() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGoldenJSON(t *testing.T) {
	for _, tc := range goldenEvents() {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join("testdata", tc.name+".golden.json")
			data, err := EncodeEvent(tc.event)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, data, "", "  "); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, append(pretty.Bytes(), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, golden); err != nil {
				t.Fatalf("golden file: %v", err)
			}
			if !bytes.Equal(data, compact.Bytes()) {
				t.Fatalf("encoding changed\n got %s\nwant %s", data, compact.Bytes())
			}
			decoded, err := DecodeEvent(tc.event.EventType(), golden)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(decoded, tc.event) {
				t.Fatalf("decoded golden\n got %#v\nwant %#v", decoded, tc.event)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, tc := range goldenEvents() {
		t.Run(tc.name, func(t *testing.T) {
			data, err := EncodeEvent(tc.event)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeEvent(tc.event.EventType(), data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.event) {
				t.Fatalf("round trip\n got %#v\nwant %#v", got, tc.event)
			}
			// A pointer encodes like its value.
			ptr := reflect.New(reflect.TypeOf(tc.event))
			ptr.Elem().Set(reflect.ValueOf(tc.event))
			pdata, err := EncodeEvent(ptr.Interface().(Event))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pdata, data) {
				t.Fatalf("pointer encoding %s, value encoding %s", pdata, data)
			}
		})
	}
}

func TestDecodeUnknownType(t *testing.T) {
	for _, typ := range []string{"", "orderPlaced", "OrderRefunded", "$metadata", " OrderPaid"} {
		t.Run(typ, func(t *testing.T) {
			e, err := DecodeEvent(typ, []byte(`{"orderId":"x"}`))
			if !errors.Is(err, ErrUnknownEventType) || e != nil {
				t.Fatalf("DecodeEvent(%q) = %v, %v; want ErrUnknownEventType", typ, e, err)
			}
			if !strings.Contains(err.Error(), `"`+typ+`"`) {
				t.Fatalf("error %q does not name the type %q", err, typ)
			}
		})
	}
}

func TestDecodeBadData(t *testing.T) {
	tests := []struct {
		name       string
		typ        string
		data       string
		jsonSyntax bool // the encoding/json syntax error is wrapped too
	}{
		{"empty", TypeOrderPlaced, ``, false},
		{"null", TypeOrderPaid, `null`, false},
		{"array", TypeOrderShipped, `[]`, false},
		{"string", TypeOrderCancelled, `"x"`, false},
		{"truncated", TypeOrderPlaced, `{"orderId":"x"`, true},
		{"trailing data", TypeOrderPaid, `{} {}`, true},
		{"wrong field type", TypeOrderPaid, `{"amount":"ten"}`, false},
		{"bad time", TypeOrderShipped, `{"shippedAt":"yesterday"}`, false},
		{"lines not a list", TypeOrderPlaced, `{"lines":{}}`, false},
		{"quantity not an integer", TypeOrderPlaced, `{"lines":[{"quantity":1.5}]}`, false},
		{"total overflows int64", TypeOrderPlaced, `{"total":9223372036854775808}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := DecodeEvent(tc.typ, []byte(tc.data))
			if !errors.Is(err, ErrInvalidEventData) || e != nil {
				t.Fatalf("DecodeEvent = %#v, %v; want ErrInvalidEventData", e, err)
			}
			var syntax *json.SyntaxError
			if tc.jsonSyntax && !errors.As(err, &syntax) {
				t.Fatalf("error %v does not wrap a *json.SyntaxError", err)
			}
		})
	}
}

func TestDecodeIgnoresUnknownFields(t *testing.T) {
	e, err := DecodeEvent(TypeOrderShipped, []byte(`{"orderId":"order-1","shippedAt":"2025-03-01T12:00:00Z","carrier":"DHL"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e, shipped()) {
		t.Fatalf("got %#v, want %#v", e, shipped())
	}
}

func TestEncodeRejectsForeignEvents(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event Event
	}{
		{"nil", nil},
		{"nil pointer", (*OrderPaid)(nil)},
		{"foreign type", foreignEvent{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if data, err := EncodeEvent(tc.event); !errors.Is(err, ErrUnknownEventType) {
				t.Fatalf("EncodeEvent = %s, %v; want ErrUnknownEventType", data, err)
			}
		})
	}
}

// FuzzDecodeEvent: decoding never panics; what decodes has the requested type, re-encodes,
// and reaches a fixed point after one encode/decode; folding it never panics.
func FuzzDecodeEvent(f *testing.F) {
	for _, tc := range goldenEvents() {
		data, err := EncodeEvent(tc.event)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tc.event.EventType(), data)
	}
	f.Add(TypeOrderPlaced, []byte(`{"lines":[{"sku":"\u0000","quantity":-1}],"placedAt":"0000-01-01T00:00:00+23:59"}`))
	f.Add(TypeOrderPaid, []byte(`null`))
	f.Add("Nope", []byte(`{}`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		e, err := DecodeEvent(typ, data)
		if err != nil {
			if e != nil {
				t.Fatalf("DecodeEvent returned %#v with error %v", e, err)
			}
			return
		}
		if e.EventType() != typ {
			t.Fatalf("DecodeEvent(%q) returned a %s", typ, e.EventType())
		}
		first, err := EncodeEvent(e)
		if err != nil {
			t.Fatalf("EncodeEvent(%#v): %v", e, err)
		}
		e2, err := DecodeEvent(typ, first)
		if err != nil {
			t.Fatalf("DecodeEvent(EncodeEvent(e)) = %v for %s", err, first)
		}
		second, err := EncodeEvent(e2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("encoding not stable\nfirst  %s\nsecond %s", first, second)
		}
		var id string
		switch v := e.(type) {
		case OrderPlaced:
			id = v.OrderID
		case OrderPaid:
			id = v.OrderID
		case OrderShipped:
			id = v.OrderID
		case OrderCancelled:
			id = v.OrderID
		}
		_, _ = Load(id, []Event{e, e})
	})
}
