package esdbnode

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// DefaultAddr is the listen address when Config.Addr is empty (EventStoreDB's
// port, on loopback).
const DefaultAddr = "127.0.0.1:2113"

// Config configures a Server.
type Config struct {
	Addr     string // listen address; "" → DefaultAddr; "127.0.0.1:0" for tests
	DataDir  string // required
	Insecure bool   // must be true to bind a non-loopback address without certificates (no TLS, no users)
	// CertificateFile, CertificatePrivateKeyFile and
	// TrustedRootCertificatesPath are KurrentDB's options of the same names:
	// the node's certificate (a PEM bundle, leaf first), its private key
	// (PEM, PKCS#8 or PKCS#1), and a directory of trusted root certificates
	// ("" → DefaultTrustedRootCertificatesPath). With a certificate the node
	// is secure: TLS on its port, users and access control, any address.
	CertificateFile             string
	CertificatePrivateKeyFile   string
	TrustedRootCertificatesPath string
	Logger                      *slog.Logger     // nil → discard
	Now                         func() time.Time // nil → time.Now
	// ObserveAppend, if set, is told how long each successful Append took in the
	// log (decide, group commit, sync), for metrics. It must not block.
	ObserveAppend func(time.Duration)
	// Limits bounds what clients can hold (zero fields: DefaultLimits).
	Limits Limits
}

// Validate reports whether the configuration can be used: a data directory, a
// host:port address, and a loopback host unless Insecure.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return ErrNoDataDir
	}
	addr := c.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w %q: %v", ErrBadAddr, addr, err)
	}
	if (c.CertificateFile == "") != (c.CertificatePrivateKeyFile == "") {
		return fmt.Errorf("%w: --certificate-file and --certificate-private-key-file go together", ErrBadCertificate)
	}
	if !c.Insecure && !c.Secure() && !isLoopbackHost(host) {
		return fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	return c.Limits.validate()
}

// Secure reports whether the node runs with TLS and users (a certificate is
// configured).
func (c Config) Secure() bool { return c.CertificateFile != "" }

// isLoopbackHost: "localhost" or a loopback IP literal. An empty host (all
// interfaces) and other names are not loopback.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Limits = c.Limits.withDefaults()
	return c
}
