package notify

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	mail "github.com/wneessen/go-mail"
)

// Defaults of SMTPConfig.
const (
	DefaultSMTPPort    = 25
	DefaultSMTPTimeout = 15 * time.Second
)

// SMTPConfig configures an SMTPTransport.
type SMTPConfig struct {
	// URL is smtp://[user:pass@]host[:port] (port 25 when missing). With a user, the transport
	// authenticates with the best mechanism the server offers.
	URL string
	// Timeout bounds connecting and every SMTP command. Default DefaultSMTPTimeout.
	Timeout time.Duration
	// HELO is the name given in EHLO. Default "localhost".
	HELO string
	// TLSConfig is used for STARTTLS. Default: verify the server's certificate for the URL's
	// host, TLS 1.2 at least.
	TLSConfig *tls.Config
}

// SMTPTransport sends messages to an SMTP server through github.com/wneessen/go-mail: one
// connection per message, STARTTLS when the server offers it (opportunistic: a server that
// does not offer it gets the message in clear), the errors classified by Classify. It is
// safe for concurrent use.
type SMTPTransport struct {
	client *mail.Client
	addr   string
}

var _ Transport = (*SMTPTransport)(nil)

// smtpURL is a parsed SMTP URL.
type smtpURL struct {
	host       string
	port       int
	user, pass string
	hasUser    bool
}

// parseSMTPURL parses smtp://[user:pass@]host[:port].
func parseSMTPURL(s string) (smtpURL, error) {
	bad := func(why string) (smtpURL, error) {
		return smtpURL{}, fmt.Errorf("%w %q: %s (want smtp://[user:pass@]host:port)", ErrInvalidSMTPURL, redact(s), why)
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("not a URL")
	}
	if u.Scheme != "smtp" {
		return bad("scheme must be smtp")
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return bad("only user, password, host and port are allowed")
	}
	host := u.Hostname()
	if host == "" {
		return bad("no host")
	}
	out := smtpURL{host: host, port: DefaultSMTPPort}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("bad port")
		}
		out.port = n
	}
	if u.User != nil {
		out.hasUser = true
		out.user = u.User.Username()
		out.pass, _ = u.User.Password()
	}
	return out, nil
}

// redact hides the password of an SMTP URL in messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// NewSMTPTransport checks cfg and returns a transport; it does not connect.
func NewSMTPTransport(cfg SMTPConfig) (*SMTPTransport, error) {
	u, err := parseSMTPURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: negative SMTP timeout", ErrInvalidConfig)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultSMTPTimeout
	}
	helo := cfg.HELO
	if helo == "" {
		helo = "localhost"
	}
	tlsConfig := cfg.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: u.host, MinVersion: tls.VersionTLS12}
	}
	opts := []mail.Option{
		mail.WithPort(u.port),
		mail.WithTimeout(timeout),
		mail.WithHELO(helo),
		mail.WithTLSPolicy(mail.TLSOpportunistic),
		mail.WithTLSConfig(tlsConfig),
	}
	if u.hasUser {
		opts = append(opts,
			mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(u.user),
			mail.WithPassword(u.pass),
		)
	}
	client, err := mail.NewClient(u.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return &SMTPTransport{client: client, addr: net.JoinHostPort(u.host, strconv.Itoa(u.port))}, nil
}

// Addr is the host:port of the SMTP server.
func (t *SMTPTransport) Addr() string { return t.addr }

// Send delivers m over a new connection. Its error wraps ErrSend (or ErrInvalidMessage) and
// is classified by Classify.
func (t *SMTPTransport) Send(ctx context.Context, m Message) error {
	msg, err := buildMsg(m)
	if err != nil {
		return Classify(err)
	}
	if err := t.client.DialAndSendWithContext(ctx, msg); err != nil {
		return Classify(fmt.Errorf("%w: smtp %s: %w", ErrSend, t.addr, err))
	}
	return nil
}
