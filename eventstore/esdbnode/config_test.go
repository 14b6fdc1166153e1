package esdbnode_test

import (
	"errors"
	"testing"
	"time"

	"github.com/orderstore/orders/eventstore/esdbnode"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  esdbnode.Config
		want error
	}{
		{"default address", esdbnode.Config{DataDir: "d"}, nil},
		{"loopback v4 ephemeral", esdbnode.Config{Addr: "127.0.0.1:0", DataDir: "d"}, nil},
		{"loopback v6", esdbnode.Config{Addr: "[::1]:2113", DataDir: "d"}, nil},
		{"localhost", esdbnode.Config{Addr: "localhost:2113", DataDir: "d"}, nil},
		{"no data dir", esdbnode.Config{Addr: "127.0.0.1:0"}, esdbnode.ErrNoDataDir},
		{"not host:port", esdbnode.Config{Addr: "127.0.0.1", DataDir: "d"}, esdbnode.ErrBadAddr},
		{"all interfaces without insecure", esdbnode.Config{Addr: ":2113", DataDir: "d"}, esdbnode.ErrNotLoopback},
		{"wildcard v4 without insecure", esdbnode.Config{Addr: "0.0.0.0:2113", DataDir: "d"}, esdbnode.ErrNotLoopback},
		{"lan address without insecure", esdbnode.Config{Addr: "192.168.1.5:2113", DataDir: "d"}, esdbnode.ErrNotLoopback},
		{"host name without insecure", esdbnode.Config{Addr: "example.com:2113", DataDir: "d"}, esdbnode.ErrNotLoopback},
		{"all interfaces with insecure", esdbnode.Config{Addr: "0.0.0.0:2113", DataDir: "d", Insecure: true}, nil},
		{"all interfaces with a certificate", esdbnode.Config{Addr: "0.0.0.0:2113", DataDir: "d", CertificateFile: "c", CertificatePrivateKeyFile: "k"}, nil},
		{"certificate without key", esdbnode.Config{Addr: "127.0.0.1:0", DataDir: "d", CertificateFile: "c"}, esdbnode.ErrBadCertificate},
		{"key without certificate", esdbnode.Config{Addr: "127.0.0.1:0", DataDir: "d", CertificatePrivateKeyFile: "k"}, esdbnode.ErrBadCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
			if _, nerr := esdbnode.New(tt.cfg); !errors.Is(nerr, tt.want) || (tt.want == nil && nerr != nil) {
				t.Fatalf("New() error = %v, want %v", nerr, tt.want)
			}
		})
	}
}

func TestConfigValidateLimits(t *testing.T) {
	bad := []esdbnode.Limits{
		{MaxConnections: -1},
		{MaxHeaderBytes: 100},
		{MinBodyRate: -5},
		{PrefaceTimeout: -time.Second},
		{MaxConnectionAge: -time.Second},
	}
	for _, l := range bad {
		cfg := esdbnode.Config{Addr: "127.0.0.1:0", DataDir: "d", Limits: l}
		if err := cfg.Validate(); !errors.Is(err, esdbnode.ErrBadLimits) {
			t.Errorf("Validate(%+v) = %v, want ErrBadLimits", l, err)
		}
	}
	if err := (esdbnode.Config{DataDir: "d", Limits: esdbnode.DefaultLimits}).Validate(); err != nil {
		t.Errorf("DefaultLimits: %v", err)
	}
}
