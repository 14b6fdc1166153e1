package auth

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestHashPassword(t *testing.T) {
	phc, salt, err := hashPassword("changeit")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(phc, "changeit") || !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") || salt == "" {
		t.Fatalf("hash %q salt %q", phc, salt)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"changeit", true}, {"changeiT", false}, {"", false}} {
		got, err := verifyPassword(phc, tc.pw)
		if err != nil || got != tc.want {
			t.Errorf("verify(%q) = %v, %v; want %v", tc.pw, got, err, tc.want)
		}
	}
	other, _, err := hashPassword("changeit")
	if err != nil || other == phc {
		t.Fatalf("two hashes of one password must differ (salt): %q", other)
	}
	for _, bad := range []string{"", "changeit", "$argon2id$v=19$m=99999999,t=2,p=1$AAAA$AAAA", "$argon2i$v=19$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=8,t=1,p=1$!!$AAAA"} {
		if _, err := verifyPassword(bad, "x"); err == nil {
			t.Errorf("verify accepted hash %q", bad)
		}
	}
}

func TestParseBasic(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		header, user, pass string
		ok                 bool
	}{
		{"Basic " + enc("admin:changeit"), "admin", "changeit", true},
		{"Basic " + enc("admin:pa:ss"), "admin", "pa:ss", true},
		{"Basic " + enc(":"), "", "", true},
		{"Basic " + enc("admin"), "", "", false},
		{"basic " + enc("admin:changeit"), "", "", false},
		{"Bearer xyz", "", "", false},
		{"Basic !!!", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		u, p, ok := ParseBasic(tt.header)
		if u != tt.user || p != tt.pass || ok != tt.ok {
			t.Errorf("ParseBasic(%q) = %q, %q, %v", tt.header, u, p, ok)
		}
	}
}

// FuzzParseBasic: any header parses without panic, and what it accepts
// round-trips through the encoding the clients use.
func FuzzParseBasic(f *testing.F) {
	f.Add("Basic YWRtaW46Y2hhbmdlaXQ=")
	f.Add("Basic ")
	f.Add("Basic =====")
	f.Add("Basic YWRtaW4=")
	f.Add("Basic\x00YQ==")
	f.Fuzz(func(t *testing.T, header string) {
		u, p, ok := ParseBasic(header)
		if !ok {
			if u != "" || p != "" {
				t.Fatalf("rejected header yielded %q %q", u, p)
			}
			return
		}
		if strings.Contains(u, ":") {
			t.Fatalf("user %q holds a colon", u)
		}
		u2, p2, ok2 := ParseBasic("Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)))
		if !ok2 || u2 != u || p2 != p {
			t.Fatalf("round trip of %q %q gave %q %q %v", u, p, u2, p2, ok2)
		}
	})
}

// FuzzVerifyPassword: a stored hash of any shape is refused or checked,
// never a panic, and never costs more than the capped parameters.
func FuzzVerifyPassword(f *testing.F) {
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", "pw")
	f.Add("$argon2id$v=19$m=0,t=0,p=0$$", "")
	f.Fuzz(func(t *testing.T, phc, pw string) {
		_, _ = verifyPassword(phc, pw)
	})
}
