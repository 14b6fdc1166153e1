package main

import (
	"github.com/spf13/cobra"
	"net/url"
	"strings"

	"github.com/orderstore/orders/eventstore/esdbnode"
)

// nodeSecurity are the embedded node's flags for TLS and for the limits on
// what clients can hold, shared by node and serve.
type nodeSecurity struct {
	limits       esdbnode.Limits
	certFile     string
	keyFile      string
	trustedRoots string
}

func (s *nodeSecurity) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.certFile, "certificate-file", "",
		"the node's certificate (PEM, leaf first), as KurrentDB's option; with it the node runs secure: TLS, users, access control")
	f.StringVar(&s.keyFile, "certificate-private-key-file", "",
		"the node certificate's private key (PEM PKCS#8 or PKCS#1), as KurrentDB's option")
	f.StringVar(&s.trustedRoots, "trusted-root-certificates-path", esdbnode.DefaultTrustedRootCertificatesPath,
		"directory of trusted root (CA) certificates, as KurrentDB's option")
	registerLimits(cmd, &s.limits)
}

// apply sets the node configuration's TLS files and limits.
func (s *nodeSecurity) apply(cfg esdbnode.Config) esdbnode.Config {
	cfg.Limits = s.limits
	cfg.CertificateFile = s.certFile
	cfg.CertificatePrivateKeyFile = s.keyFile
	cfg.TrustedRootCertificatesPath = s.trustedRoots
	return cfg
}

// servable returns the connection string serve's own clients (projections, e-mail sender,
// status page) use with the embedded node. Insecure, that is the node's own (""). Secure,
// serve does not know an administrator's password nor which CA its clients should trust, so
// they come from the connection string the user gives (--esdb or ORDERS_ESDB), which must
// name the node (serveUsesExternal has checked the address) with credentials and TLS.
func (s *nodeSecurity) servable(esdbURL string, explicit bool) (string, error) {
	if s.certFile == "" {
		return "", nil
	}
	const want = "a secure embedded node needs --esdb (or ORDERS_ESDB) naming it with an administrator's credentials and TLS, " +
		"e.g. --esdb 'esdb://admin:changeit@127.0.0.1:2113?tls=true&tlsCAFile=ca.crt'"
	if !explicit {
		return "", usageErrorf("%s", want)
	}
	u, err := url.Parse(esdbURL)
	if err != nil || u.User == nil || u.User.Username() == "" {
		return "", usageErrorf("%s; --esdb has no credentials", want)
	}
	if strings.EqualFold(u.Query().Get("tls"), "false") {
		return "", usageErrorf("%s; --esdb has tls=false", want)
	}
	return esdbURL, nil
}

// registerLimits adds a flag for every bound of the embedded node on what a
// client can hold (esdbnode.Limits), with the node's defaults.
func registerLimits(cmd *cobra.Command, l *esdbnode.Limits) {
	f := cmd.Flags()
	d := esdbnode.DefaultLimits
	*l = d
	f.IntVar(&l.MaxConnections, "max-connections", d.MaxConnections,
		"most simultaneous connections to the node (gRPC and HTTP); more are refused with 503")
	f.DurationVar(&l.PrefaceTimeout, "preface-timeout", d.PrefaceTimeout,
		"how long a new connection may stay silent (or take over its TLS handshake)")
	f.DurationVar(&l.ReadHeaderTimeout, "read-header-timeout", d.ReadHeaderTimeout,
		"how long an HTTP request's headers may take")
	f.IntVar(&l.MaxHeaderBytes, "max-header-bytes", d.MaxHeaderBytes,
		"largest HTTP request header or gRPC header list, in bytes")
	f.IntVar(&l.MinBodyRate, "min-body-rate", d.MinBodyRate,
		"minimum HTTP request body rate in bytes/s once --body-rate-grace has passed; slower gets 408")
	f.DurationVar(&l.BodyRateGrace, "body-rate-grace", d.BodyRateGrace,
		"how long an HTTP request body may take before --min-body-rate applies")
	f.DurationVar(&l.WriteTimeout, "http-write-timeout", d.WriteTimeout,
		"how long an HTTP response may take to write")
	f.DurationVar(&l.IdleTimeout, "http-idle-timeout", d.IdleTimeout,
		"close an idle HTTP keep-alive connection after this long")
	f.Uint32Var(&l.MaxConcurrentStreams, "max-concurrent-streams", d.MaxConcurrentStreams,
		"most gRPC calls open at once on one connection")
	f.DurationVar(&l.KeepaliveMinTime, "keepalive-min-time", d.KeepaliveMinTime,
		"shortest gRPC ping interval a client may use (the official client pings every 10s)")
	f.DurationVar(&l.KeepaliveTime, "keepalive-time", d.KeepaliveTime,
		"ping a gRPC connection silent this long")
	f.DurationVar(&l.KeepaliveTimeout, "keepalive-timeout", d.KeepaliveTimeout,
		"close a gRPC connection whose ping goes unanswered this long")
	f.DurationVar(&l.MaxConnectionIdle, "max-connection-idle", d.MaxConnectionIdle,
		"close a gRPC connection without calls for this long (clients reconnect on their next call)")
	f.DurationVar(&l.MaxConnectionAge, "max-connection-age", d.MaxConnectionAge,
		"end gRPC connections this old; 0 for no limit, so subscriptions may live for days")
	f.DurationVar(&l.MaxConnectionAgeGrace, "max-connection-age-grace", d.MaxConnectionAgeGrace,
		"time the calls of a connection past --max-connection-age get to finish")
}
