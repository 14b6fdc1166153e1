package esdbnode_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

func TestTLSClients(t *testing.T) {
	certs := esdbnodetest.NewCerts(t)
	srv := esdbnodetest.StartSecure(t, certs)

	t.Run("tlsCAFile", func(t *testing.T) {
		c := esdbnodetest.Dial(t, esdbnodetest.SecureURL(srv, certs, "admin", "changeit"))
		v, err := c.GetServerVersion()
		require.NoError(t, err)
		require.Equal(t, 24, v.Major)
		_, err = c.AppendToStream(t.Context(), "tls-ca", esdb.AppendToStreamOptions{}, jsonEvent("E", 1))
		require.NoError(t, err)
	})
	t.Run("tlsVerifyCert=false", func(t *testing.T) {
		c := esdbnodetest.Dial(t, "esdb://admin:changeit@"+srv.Addr()+"?tls=true&tlsVerifyCert=false")
		_, err := c.AppendToStream(t.Context(), "tls-noverify", esdb.AppendToStreamOptions{}, jsonEvent("E", 1))
		require.NoError(t, err)
	})
	t.Run("a client trusting another CA is refused", func(t *testing.T) {
		other := esdbnodetest.NewCerts(t)
		c := esdbnodetest.Dial(t, esdbnodetest.SecureURL(srv, other, "admin", "changeit"))
		_, err := c.AppendToStream(t.Context(), "tls-other", esdb.AppendToStreamOptions{}, jsonEvent("E", 1))
		require.Error(t, err)
		require.Contains(t, err.Error(), "certificate signed by unknown authority")
	})
	t.Run("a plain-text client is refused", func(t *testing.T) {
		c := esdbnodetest.Dial(t, "esdb://"+srv.Addr()+"?tls=false")
		_, err := c.AppendToStream(t.Context(), "tls-plain", esdb.AppendToStreamOptions{}, jsonEvent("E", 1))
		require.Error(t, err)
	})
	t.Run("HTTP over TLS on the same port", func(t *testing.T) {
		pem, err := os.ReadFile(certs.CAFile)
		require.NoError(t, err)
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(pem))
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
		resp, err := hc.Get("https://" + srv.Addr() + "/health/live")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		require.Equal(t, "HTTP/1.1", resp.Proto)
	})
}

func TestTLSStartupRefusesBadFiles(t *testing.T) {
	certs := esdbnodetest.NewCerts(t)
	other := esdbnodetest.NewCerts(t)
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	emptyDir := t.TempDir()
	cases := []struct {
		name            string
		cert, key, root string
		want            string
	}{
		{"missing certificate file", filepath.Join(dir, "nope.crt"), certs.KeyFile, certs.RootsDir, "certificate file"},
		{"missing key file", certs.CertFile, filepath.Join(dir, "nope.key"), certs.RootsDir, "private key file"},
		{"garbage certificate", file("garbage.crt", "hello"), certs.KeyFile, certs.RootsDir, "garbage.crt"},
		{"garbage key", certs.CertFile, file("garbage.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), certs.RootsDir, "garbage.key"},
		{"encrypted key", certs.CertFile, file("enc.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), certs.RootsDir, "encrypted"},
		{"key of another certificate", certs.CertFile, other.KeyFile, certs.RootsDir, "certificate"},
		{"no trusted roots", certs.CertFile, certs.KeyFile, emptyDir, "no trusted root certificate"},
		{"missing roots directory", certs.CertFile, certs.KeyFile, filepath.Join(dir, "nope"), "trusted root certificates path"},
		{"not signed by a trusted root", certs.CertFile, certs.KeyFile, other.RootsDir, "does not chain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := esdbnode.New(esdbnode.Config{
				Addr: "127.0.0.1:0", DataDir: t.TempDir(),
				CertificateFile: tc.cert, CertificatePrivateKeyFile: tc.key, TrustedRootCertificatesPath: tc.root,
			})
			require.NoError(t, err)
			err = srv.Start()
			require.Error(t, err)
			require.True(t, errors.Is(err, esdbnode.ErrBadCertificate), "%v", err)
			require.True(t, strings.Contains(err.Error(), tc.want), "%q lacks %q", err, tc.want)
			require.NoError(t, srv.Close())
		})
	}
}
