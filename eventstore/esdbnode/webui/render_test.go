package webui

import (
	"strings"
	"testing"
)

func TestNewBody(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		json    bool
		text    string // exact Text, "" to skip
		hex     bool
		invalid bool
	}{
		{name: "empty", in: nil},
		{name: "json object is indented", in: []byte(`{"a":1,"b":[true,null]}`), json: true, text: "{\n  \"a\": 1,\n  \"b\": [\n    true,\n    null\n  ]\n}"},
		{name: "json string", in: []byte(`"C:5/P:5"`), json: true, text: `"C:5/P:5"`},
		{name: "plain text", in: []byte("0@order-1"), text: "0@order-1"},
		{name: "invalid utf-8 inside json is not json", in: []byte("{\"a\":\"\xff\"}"), text: "{\"a\":\"\uFFFD\"}", hex: true, invalid: true},
		{name: "broken utf-8", in: []byte("a\xc3"), text: "a\uFFFD", hex: true, invalid: true},
		{name: "control characters", in: []byte("a\x00b\x1bc\td\n"), text: "a\uFFFDb\uFFFDc\td\n", hex: true},
		{name: "markup is kept as text for the template to escape", in: []byte("<b>x</b>"), text: "<b>x</b>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBody(tc.in)
			if b.Empty != (len(tc.in) == 0) || b.Size != len(tc.in) {
				t.Fatalf("Empty %v Size %d for %d bytes", b.Empty, b.Size, len(tc.in))
			}
			if b.JSON != tc.json || b.Invalid != tc.invalid || (b.Hex != "") != tc.hex {
				t.Fatalf("JSON %v Invalid %v Hex %q; want %v %v %v", b.JSON, b.Invalid, b.Hex, tc.json, tc.invalid, tc.hex)
			}
			if tc.text != "" && b.Text != tc.text {
				t.Fatalf("Text %q, want %q", b.Text, tc.text)
			}
		})
	}
	t.Run("hex dump is bounded", func(t *testing.T) {
		b := newBody([]byte("\xff" + strings.Repeat("x", 2*maxHex)))
		if !b.HexCut || strings.Count(b.Hex, "\n") != maxHex/16 {
			t.Fatalf("HexCut %v, %d lines", b.HexCut, strings.Count(b.Hex, "\n"))
		}
	})
}

func TestParseLink(t *testing.T) {
	tests := []struct {
		in     string
		stream string
		n      uint64
		ok     bool
	}{
		{"0@order-1", "order-1", 0, true},
		{"12@a@b", "a@b", 12, true},
		{"x@order-1", "", 0, false},
		{"5@", "", 0, false},
		{"order-1", "", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			s, n, ok := parseLink([]byte(tc.in))
			if s != tc.stream || n != tc.n || ok != tc.ok {
				t.Fatalf("parseLink(%q) = %q %d %v", tc.in, s, n, ok)
			}
		})
	}
}
