package esdbnode

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI returns a CA directory and a PEM node certificate and key signed by it.
func testPKI(tb testing.TB) (rootsDir string, certPEM, keyPEM []byte) {
	tb.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	caKey, nodeKey := key(), key()
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	nodeTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), DNSNames: []string{"localhost"}}
	nodeDER, err := x509.CreateCertificate(rand.Reader, nodeTmpl, ca, &nodeKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(nodeKey)
	if err != nil {
		tb.Fatal(err)
	}
	rootsDir = tb.TempDir()
	if err := os.WriteFile(filepath.Join(rootsDir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return rootsDir, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: nodeDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// FuzzLoadTLS: malformed certificate and key files at start-up give an
// ErrBadCertificate error, never a panic; the valid pair loads.
func FuzzLoadTLS(f *testing.F) {
	roots, certPEM, keyPEM := testPKI(f)
	f.Add(certPEM, keyPEM)
	f.Add(certPEM[:len(certPEM)/2], keyPEM)
	f.Add(certPEM, keyPEM[:len(keyPEM)/2])
	f.Add(keyPEM, certPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte{0x30, 0x82, 0xff, 0xff}, []byte{})
	f.Fuzz(func(t *testing.T, cert, key []byte) {
		dir := t.TempDir()
		cf, kf := filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key")
		if err := os.WriteFile(cf, cert, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(kf, key, 0o600); err != nil {
			t.Fatal(err)
		}
		nt, err := loadTLS(cf, kf, roots, time.Now())
		if err != nil {
			if !errors.Is(err, ErrBadCertificate) {
				t.Fatalf("error does not wrap ErrBadCertificate: %v", err)
			}
			return
		}
		if nt.cert.Leaf == nil {
			t.Fatal("loaded without a leaf")
		}
	})
}
