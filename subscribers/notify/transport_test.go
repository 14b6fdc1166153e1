package notify_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderstore/orders/internal/testutil/smtptest"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/subscribers"
	"github.com/orderstore/orders/subscribers/notify"
)

func testMessage(to string) notify.Message {
	id := uuid.New()
	return notify.Message{
		ID:      notify.MessageID(notify.KindPaymentConfirmation, id, "orders.local"),
		From:    "orders@localhost",
		To:      to,
		Subject: "Payment smtptest.Message for order 1",
		Date:    paidAt,
		Body:    "Hello,\n\nthanks – ünïcode too.\n",
		EventID: id,
		OrderID: "1",
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		permanent bool
	}{
		{"nil", nil, false},
		{"SMTP 421", &textproto.Error{Code: 421, Msg: "try later"}, false},
		{"SMTP 451", &textproto.Error{Code: 451, Msg: "local error"}, false},
		{"SMTP 550", &textproto.Error{Code: 550, Msg: "no such user"}, true},
		{"SMTP 554 wrapped", errors.Join(errors.New("x"), &textproto.Error{Code: 554, Msg: "rejected"}), true},
		{"bad address", notify.ErrInvalidMessage, true},
		{"deadline", context.DeadlineExceeded, false},
		{"other", errors.New("connection reset by peer"), false},
		{"already permanent", subscribers.Permanent(errors.New("x")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := notify.Classify(tt.err)
			if tt.err == nil {
				assert.NoError(t, got)
				return
			}
			assert.Equal(t, tt.permanent, subscribers.IsPermanent(got))
			assert.ErrorIs(t, got, tt.err)
		})
	}
}

// TestSMTPTransportErrors sends through go-mail to a real SMTP server in each failure mode.
func TestSMTPTransportErrors(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, s *smtptest.Server)
		to        string
		permanent bool
	}{
		{"recipient rejected 550", func(_ *testing.T, s *smtptest.Server) { s.SetRejectRcpt("bad@example.com", true) }, "bad@example.com", true},
		{"greeting refused 421", func(_ *testing.T, s *smtptest.Server) { s.SetTempFail(true) }, "ok@example.com", false},
		{"connection refused", func(_ *testing.T, s *smtptest.Server) { s.Stop() }, "ok@example.com", false},
		{"malformed address", func(*testing.T, *smtptest.Server) {}, "not an address", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := smtptest.Start(t)
			tr, err := notify.NewSMTPTransport(notify.SMTPConfig{URL: s.URL(), Timeout: 5 * time.Second})
			require.NoError(t, err)
			tt.setup(t, s)
			err = tr.Send(t.Context(), testMessage(tt.to))
			require.Error(t, err)
			assert.Equal(t, tt.permanent, subscribers.IsPermanent(err), "permanent? %v", err)
			assert.Empty(t, s.Messages())
		})
	}
}

func TestSMTPTransportDelivers(t *testing.T) {
	cert := httptest.NewTLSServer(nil) // only for its self-signed certificate for 127.0.0.1
	cert.Close()
	serverTLS := &tls.Config{Certificates: cert.TLS.Certificates}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Certificate())

	tests := []struct {
		name    string
		tls     *tls.Config
		client  *tls.Config
		wantTLS bool
	}{
		{"plain when STARTTLS is not offered", nil, nil, false},
		{"STARTTLS when offered", serverTLS, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *smtptest.Server
			if tt.tls != nil {
				s = smtptest.Start(t, tt.tls)
			} else {
				s = smtptest.Start(t)
			}
			tr, err := notify.NewSMTPTransport(notify.SMTPConfig{URL: s.URL(), TLSConfig: tt.client})
			require.NoError(t, err)
			m := testMessage("ada@example.com")
			require.NoError(t, tr.Send(t.Context(), m))
			msgs := s.Messages()
			require.Len(t, msgs, 1)
			got := msgs[0]
			assert.Equal(t, m.ID, got.MessageID)
			assert.Equal(t, []string{"ada@example.com"}, got.To)
			assert.Equal(t, "orders@localhost", got.From)
			assert.Equal(t, m.Subject, got.Subject)
			assert.Equal(t, m.Body, got.Body)
			assert.Equal(t, m.EventID.String(), got.EventID)
			assert.Equal(t, tt.wantTLS, got.TLS)
		})
	}
}

func TestSMTPURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
		addr string
		ok   bool
	}{
		{"host and port", "smtp://127.0.0.1:1025", "127.0.0.1:1025", true},
		{"default port", "smtp://mail.example.com", "mail.example.com:25", true},
		{"user and password", "smtp://u:p%40ss@mail.example.com:587", "mail.example.com:587", true},
		{"wrong scheme", "http://mail.example.com", "", false},
		{"no host", "smtp://:25", "", false},
		{"bad port", "smtp://h:99999", "", false},
		{"path", "smtp://h:25/x", "", false},
		{"not a URL", "::", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := notify.NewSMTPTransport(notify.SMTPConfig{URL: tt.url})
			if !tt.ok {
				require.ErrorIs(t, err, notify.ErrInvalidSMTPURL)
				assert.NotContains(t, err.Error(), "p@ss")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.addr, tr.Addr())
		})
	}
}

func TestFileTransport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail")
	tr, err := notify.NewFileTransport(dir)
	require.NoError(t, err)

	m := testMessage("ada@example.com")
	require.NoError(t, tr.Send(t.Context(), m))
	name := filepath.Join(dir, notify.FileName(m.ID))
	first, err := os.ReadFile(name)
	require.NoError(t, err)
	want, err := notify.Encode(m)
	require.NoError(t, err)
	assert.Equal(t, want, first)

	// The same Message-ID again replaces the file: a duplicate is absorbed.
	m2 := m
	m2.Subject = "second"
	require.NoError(t, tr.Send(t.Context(), m2))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left, one file per Message-ID")
	assert.Equal(t, notify.FileName(m.ID), entries[0].Name())

	// Another message, another file.
	require.NoError(t, tr.Send(t.Context(), testMessage("bob@example.com")))
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2)

	// A message that can never be written is permanent.
	err = tr.Send(t.Context(), testMessage("nope"))
	assert.True(t, subscribers.IsPermanent(err))

	// A failing write is temporary. (The directory becomes a file, which fails even as root.)
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.WriteFile(dir, nil, 0o644))
	err = tr.Send(t.Context(), testMessage("carol@example.com"))
	require.ErrorIs(t, err, notify.ErrSend)
	assert.False(t, subscribers.IsPermanent(err))
}

func TestFileName(t *testing.T) {
	assert.Equal(t, "orderpaid.x@orders.local.eml", notify.FileName("orderpaid.x@orders.local"))
	assert.Equal(t, "a_b_c.eml", notify.FileName("a/b\\c"))
	assert.Equal(t, "_..eml", notify.FileName("/."))
}
