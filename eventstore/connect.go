package eventstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// DefaultConnectionString is the embedded node's default address, without TLS.
const DefaultConnectionString = "esdb://127.0.0.1:2113?tls=false"

// ConnectOption adjusts the client configuration built by Connect.
type ConnectOption func(*esdb.Configuration)

// WithLogger sends the client's own log lines to logger at debug level (errors and warnings
// at warn level). Without it they are discarded: the client would otherwise print them with
// the standard library's global logger.
//
// The client reports two expected situations at its error level: a persistent subscription
// group that already exists (every restart: the group is used as it is) and a subscription
// dropped because its context was cancelled (every clean shutdown). Those are logged at
// debug. The client gives only formatted text, so they are recognised by it (the
// alternative, silencing the client, would hide real trouble).
func WithLogger(logger *slog.Logger) ConnectOption {
	return func(c *esdb.Configuration) {
		c.Logger = func(level esdb.LogLevel, format string, args ...any) {
			msg := fmt.Sprintf(format, args...)
			if (level == esdb.LogError || level == esdb.LogWarn) && !expectedClientLog(msg) {
				logger.Warn(msg, "component", "esdb-client")
				return
			}
			logger.Debug(msg, "component", "esdb-client")
		}
	}
}

// expectedClientLog reports whether a client log line is one of the expected situations.
func expectedClientLog(msg string) bool {
	switch {
	case strings.Contains(msg, "AlreadyExists") && strings.Contains(msg, "exists"):
		return true // "... code = AlreadyExists desc = Subscription group ... on stream ... exists"
	case strings.Contains(msg, "subscription has dropped") && strings.Contains(msg, "context canceled"):
		return true
	}
	return false
}

// Connect parses connString and returns a client of the official EventStoreDB client. It
// does not contact the node: the client connects on its first call. A string the client
// cannot parse fails with ErrInvalidConnectionString.
func Connect(connString string, opts ...ConnectOption) (*esdb.Client, error) {
	cfg, err := esdb.ParseConnectionString(connString)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidConnectionString, connString, err)
	}
	cfg.Logger = esdb.NoopLogging()
	for _, opt := range opts {
		opt(cfg)
	}
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidConnectionString, connString, err)
	}
	return client, nil
}

// Address returns the host:port (or the list of gossip seeds) a connection string names, for
// messages. It returns connString itself when it cannot be parsed.
func Address(connString string) string {
	cfg, err := esdb.ParseConnectionString(connString)
	if err != nil {
		return connString
	}
	if len(cfg.GossipSeeds) > 0 {
		s := ""
		for i, seed := range cfg.GossipSeeds {
			if i > 0 {
				s += ","
			}
			s += seed.String()
		}
		return s
	}
	return cfg.Address
}

// Ping checks that the node answers, by reading the last event of $all. It fails with
// ErrUnavailable when the node cannot be reached.
func Ping(ctx context.Context, client *esdb.Client) error {
	rs, err := client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return translate(ctx, "ping", err)
	}
	defer rs.Close()
	if _, err := rs.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return translate(ctx, "ping", err)
	}
	return nil
}

// NodeHTTP is how to reach the HTTP API of the node a connection string names, with its
// credentials and TLS settings (tlsCAFile, tlsVerifyCert): for administration calls such as
// user management, which the gRPC client does not offer.
type NodeHTTP struct {
	BaseURL  string // "https://host:port" or "http://host:port"
	Username string // from the connection string; "" if none
	Password string
	Client   *http.Client
}

// HTTPFor returns the NodeHTTP of a single-node connection string. A string the client
// cannot parse, or one naming several gossip seeds, fails with ErrInvalidConnectionString.
func HTTPFor(connString string) (*NodeHTTP, error) {
	cfg, err := esdb.ParseConnectionString(connString)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidConnectionString, connString, err)
	}
	if cfg.Address == "" {
		return nil, fmt.Errorf("%w: %q: name one node, not gossip seeds", ErrInvalidConnectionString, connString)
	}
	n := &NodeHTTP{Username: cfg.Username, Password: cfg.Password, BaseURL: "https://" + cfg.Address}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.DisableTLS {
		n.BaseURL = "http://" + cfg.Address
	} else {
		tr.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, InsecureSkipVerify: cfg.SkipCertificateVerification} //nolint:gosec // the user's tlsVerifyCert=false
	}
	n.Client = &http.Client{Transport: tr}
	return n, nil
}
