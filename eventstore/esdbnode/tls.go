package esdbnode

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// DefaultTrustedRootCertificatesPath is KurrentDB's default directory of
// trusted root certificates on Linux.
const DefaultTrustedRootCertificatesPath = "/etc/ssl/certs"

// rootExtensions are the files of the trusted-roots directory that are read,
// as KurrentDB reads them.
var rootExtensions = []string{".crt", ".cert", ".cer", ".pem", ".der"}

// nodeTLS is the node's loaded certificate material.
type nodeTLS struct {
	cert  tls.Certificate
	roots *x509.CertPool
}

// loadTLS reads and checks the node's certificate, key and trusted roots the
// way KurrentDB does at start-up: the certificate file is a PEM bundle (leaf
// first, then intermediates), the key file PKCS#8 or PKCS#1 (or SEC 1 for an
// EC key, which KurrentDB refuses and Go accepts), the roots every
// certificate file of a directory; the leaf must chain to one of them. Every
// failure wraps ErrBadCertificate and says which file is at fault.
func loadTLS(certFile, keyFile, rootsPath string, now time.Time) (*nodeTLS, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%w: --certificate-file and --certificate-private-key-file go together (PKCS#12 files are not supported)", ErrBadCertificate)
	}
	if rootsPath == "" {
		rootsPath = DefaultTrustedRootCertificatesPath
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate file: %v", ErrBadCertificate, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: private key file: %v", ErrBadCertificate, err)
	}
	chain, err := parseCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate file %s: %v", ErrBadCertificate, certFile, err)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: certificate file %s holds no certificate", ErrBadCertificate, certFile)
	}
	if err := checkKeyPEM(keyPEM); err != nil {
		return nil, fmt.Errorf("%w: private key file %s: %v", ErrBadCertificate, keyFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate %s and key %s: %v", ErrBadCertificate, certFile, keyFile, err)
	}
	roots, n, err := loadRoots(rootsPath)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: no trusted root certificate files were loaded from %s", ErrBadCertificate, rootsPath)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("%w: certificate %s does not chain to a root in %s: %v", ErrBadCertificate, certFile, rootsPath, err)
	}
	pair.Leaf = leaf
	return &nodeTLS{cert: pair, roots: roots}, nil
}

// parseCertificates reads every CERTIFICATE block of a PEM bundle, or one
// DER certificate.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	if !strings.Contains(string(data), "-----BEGIN") {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, err
		}
		return []*x509.Certificate{c}, nil
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// checkKeyPEM accepts the key formats KurrentDB accepts (and SEC 1 EC keys);
// an encrypted key is refused with the reason.
func checkKeyPEM(data []byte) error {
	block, _ := pem.Decode(data)
	if block == nil {
		return errors.New("not a PEM private key")
	}
	switch block.Type {
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
		return nil
	case "ENCRYPTED PRIVATE KEY":
		return errors.New("encrypted private keys are not supported: decrypt it (openssl pkey)")
	default:
		return fmt.Errorf("unsupported private key file format %q", block.Type)
	}
}

// loadRoots reads every certificate file of dir.
func loadRoots(dir string) (*x509.CertPool, int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: trusted root certificates path: %v", ErrBadCertificate, err)
	}
	pool := x509.NewCertPool()
	n := 0
	for _, e := range entries {
		if e.IsDir() || !slices.Contains(rootExtensions, strings.ToLower(filepath.Ext(e.Name()))) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: trusted root %s: %v", ErrBadCertificate, path, err)
		}
		certs, err := parseCertificates(data)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: trusted root %s: %v", ErrBadCertificate, path, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
			n++
		}
	}
	return pool, n, nil
}

// serverConfig is the TLS configuration of the node's port. gRPC clients
// offer only "h2"; browsers and curl offer "http/1.1" too and get it, so the
// web UI and /info stay on the node's HTTP/1.1 server while gRPC gets h2.
func (t *nodeTLS) serverConfig() *tls.Config {
	base := &tls.Config{
		Certificates: []tls.Certificate{t.cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    t.roots,
		MinVersion:   tls.VersionTLS12,
	}
	h2, h1 := base.Clone(), base.Clone()
	h2.NextProtos = []string{"h2"}
	h1.NextProtos = []string{"http/1.1"}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if len(hello.SupportedProtos) == 0 || slices.Contains(hello.SupportedProtos, "http/1.1") {
				return h1, nil
			}
			return h2, nil
		},
	}
}
