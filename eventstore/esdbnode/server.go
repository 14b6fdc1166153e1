package esdbnode

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/orderstore/orders/eventstore/esdbnode/auth"
	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
	"github.com/orderstore/orders/eventstore/esdbnode/psub"
	"github.com/orderstore/orders/eventstore/esdbnode/webui"
)

// Version is the EventStoreDB version the node reports (ServerFeatures and /info).
const Version = "24.10.0"

const (
	// stopGrace bounds how long Close waits for in-flight calls before
	// cutting them off.
	stopGrace = 5 * time.Second
)

// Server is an embedded EventStoreDB node. Create it with New.
type Server struct {
	cfg Config
	mux *http.ServeMux

	mu      sync.Mutex
	started bool
	closed  bool

	// Set by Start.
	elog     *eventlog.Log
	ps       *psub.Service
	ui       *webui.Handler // the web UI, mounted at / and /web/
	gs       *grpc.Server
	hs       *http.Server
	ln       net.Listener
	grpcLn   *connListener
	httpLn   *connListener
	baseCtx  context.Context // cancelled by Close: ends subscriptions
	cancel   context.CancelFunc
	wg       sync.WaitGroup // accept loop, connection sniffers, Serve goroutines
	conns    connCounter    // open connections, against Limits.MaxConnections
	tlsCfg   *tls.Config    // nil: insecure
	users    *auth.Users    // nil: insecure (no users, no access control)
	closeErr error
	stopped  chan struct{} // closed when the first Close has finished
}

// New validates cfg and returns a server that is not started.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg.withDefaults(), mux: http.NewServeMux(), stopped: make(chan struct{})}
	s.mux.HandleFunc("GET /health/live", s.handleLive)
	s.mux.HandleFunc("GET /info", s.handleInfo)
	// The web UI needs the log, which Start opens; these routes reach it
	// only once the HTTP server runs, after Start has set s.ui.
	s.mux.Handle("GET /{$}", http.HandlerFunc(s.serveUI))
	s.mux.Handle("/web/", http.HandlerFunc(s.serveUI))
	return s, nil
}

// Handle adds an HTTP/1.1 route (http.ServeMux pattern syntax) served on the
// node's port beside gRPC. It must be called before Start; it fails with
// ErrStarted afterwards, and panics like http.ServeMux.Handle on a
// conflicting pattern.
func (s *Server) Handle(pattern string, h http.Handler) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return ErrStarted
	}
	s.mux.Handle(pattern, h)
	return nil
}

// Start opens the log, seeds $users on first start, starts the
// persistent-subscription engine and serves gRPC and HTTP on Config.Addr. It
// returns once the port accepts connections.
func (s *Server) Start() (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return ErrStarted
	}
	s.started = true
	lg := s.cfg.Logger

	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.cancel()
			if s.ps != nil {
				_ = s.ps.Close()
			}
			if s.elog != nil {
				_ = s.elog.Close()
			}
			s.ps, s.elog = nil, nil
		}
	}()

	if s.cfg.Secure() {
		nt, err := loadTLS(s.cfg.CertificateFile, s.cfg.CertificatePrivateKeyFile, s.cfg.TrustedRootCertificatesPath, s.cfg.Now())
		if err != nil {
			return err
		}
		s.tlsCfg = nt.serverConfig()
	}
	s.elog, err = eventlog.Open(s.cfg.DataDir, eventlog.Options{Now: s.cfg.Now})
	if err != nil {
		return fmt.Errorf("esdbnode: open log: %w", err)
	}
	if err := seedUsers(s.baseCtx, s.elog); err != nil {
		return fmt.Errorf("esdbnode: seed $users: %w", err)
	}
	if s.cfg.Secure() {
		s.users = auth.New(s.elog)
		if err := s.users.EnsureDefaults(s.baseCtx); err != nil {
			return fmt.Errorf("esdbnode: create default users: %w", err)
		}
		s.registerUsersAPI()
	}
	if s.ps, err = psub.New(s.elog, psub.Options{Logger: lg, Now: s.cfg.Now}); err != nil {
		return fmt.Errorf("esdbnode: persistent subscriptions: %w", err)
	}
	if err := s.ps.Start(); err != nil {
		return fmt.Errorf("esdbnode: start persistent subscriptions: %w", err)
	}
	s.ui = webui.New(s.elog, s.ps, webui.Options{Logger: lg, Now: s.cfg.Now, Version: Version})
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("esdbnode: listen: %w", err)
	}
	s.ln = ln
	s.conns.max = int64(s.cfg.Limits.MaxConnections)
	s.grpcLn = newConnListener(ln.Addr())
	s.httpLn = newConnListener(ln.Addr())

	lim := s.cfg.Limits
	unary := []grpc.UnaryServerInterceptor{recoverUnary(lg), logCancelUnary(lg)}
	stream := []grpc.StreamServerInterceptor{recoverStream(lg), logCancelStream(lg)}
	if s.users != nil {
		unary = append(unary, authUnary(s.users))
		stream = append(stream, authStream(s.users))
	}
	stream = append(stream, endOnClose(s.baseCtx))
	s.gs = grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: lim.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:                  lim.KeepaliveTime,
			Timeout:               lim.KeepaliveTimeout,
			MaxConnectionIdle:     lim.MaxConnectionIdle,
			MaxConnectionAge:      lim.MaxConnectionAge, // 0: none
			MaxConnectionAgeGrace: lim.MaxConnectionAgeGrace,
		}),
		grpc.MaxConcurrentStreams(lim.MaxConcurrentStreams),
		grpc.MaxRecvMsgSize(MaxReceiveMessageSize),
		grpc.MaxHeaderListSize(uint32(lim.MaxHeaderBytes)),
		grpc.ConnectionTimeout(lim.PrefaceTimeout),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.ForceServerCodecV2(newRawCodec()),
	)
	serverfeatures.RegisterServerFeaturesServer(s.gs, featuresService{})
	streams.RegisterStreamsServer(s.gs, &streamsService{log: s.elog, logger: lg, base: s.baseCtx, observeAppend: s.cfg.ObserveAppend})
	persistent.RegisterPersistentSubscriptionsServer(s.gs, s.ps)

	s.hs = &http.Server{
		Handler:           minBodyRate(s.mux, lim.MinBodyRate, lim.BodyRateGrace),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		// net/http reports clients that misbehave or vanish here: they are
		// not the node's errors.
		ErrorLog: slog.NewLogLogger(lg.Handler(), slog.LevelDebug),
	}

	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		_ = s.gs.Serve(s.grpcLn)
	}()
	go func() {
		defer s.wg.Done()
		_ = s.hs.Serve(s.httpLn)
	}()
	go func() {
		defer s.wg.Done()
		s.acceptLoop()
	}()
	lg.Info("esdbnode started", "addr", ln.Addr().String(), "data_dir", s.cfg.DataDir, "version", Version, "secure", s.cfg.Secure())
	return nil
}

// Addr is the host:port the server listens on ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// ConnectionString is the esdb:// URL the official client connects with:
// "?tls=false" for an insecure node; for a secure one "?tls=true", to which
// a client adds credentials and, for a private CA, tlsCAFile.
func (s *Server) ConnectionString() string {
	if s.cfg.Secure() {
		return "esdb://" + s.Addr() + "?tls=true"
	}
	return "esdb://" + s.Addr() + "?tls=false"
}

// Users is a secure node's user store, for in-process tools; nil for an
// insecure node or before Start.
func (s *Server) Users() *auth.Users {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users
}

// Log is the node's event log, for in-process tools; nil before Start.
func (s *Server) Log() *eventlog.Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.elog
}

// Close stops the server: it ends open catch-up subscriptions, stops
// accepting connections, waits up to a bounded grace period for in-flight
// calls, then closes the persistent-subscription engine and the log. It is
// idempotent; later calls wait for the first and return its result.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.stopped
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.closeErr
	}
	s.closed = true
	if !s.started || s.ln == nil {
		s.mu.Unlock()
		close(s.stopped)
		return nil
	}
	s.mu.Unlock()
	defer close(s.stopped)

	s.cancel() // subscriptions and HTTP handlers end
	_ = s.ln.Close()

	stopped := make(chan struct{})
	go func() {
		s.gs.GracefulStop()
		close(stopped)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
	defer cancel()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.cfg.Logger.Warn("esdbnode: in-flight calls did not finish in time; stopping them", "grace", stopGrace)
		s.gs.Stop()
		<-stopped
	}
	if err := s.hs.Shutdown(ctx); err != nil {
		_ = s.hs.Close()
	}
	s.grpcLn.Close()
	s.httpLn.Close()
	s.wg.Wait()

	err := errors.Join(s.ps.Close(), s.elog.Close())
	s.mu.Lock()
	s.closeErr = err
	s.mu.Unlock()
	if err != nil {
		s.cfg.Logger.Error("esdbnode stopped with error", "err", err)
	} else {
		s.cfg.Logger.Info("esdbnode stopped", "addr", s.ln.Addr().String())
	}
	return err
}

// serveUI hands a request to the web UI (set by Start before serving). On
// a secure node the UI is for admins only: it shows $all and the system
// streams. A request without valid Basic credentials gets 401 with a Basic
// challenge (the browser asks for a login, as for KurrentDB's UI), a
// non-admin 403; neither sees anything of the log.
func (s *Server) serveUI(w http.ResponseWriter, r *http.Request) {
	if s.users != nil {
		user, pass, ok := auth.ParseBasic(r.Header.Get("Authorization"))
		var p auth.Principal
		var err error
		if ok {
			p, err = s.users.Authenticate(r.Context(), user, pass)
		}
		switch {
		case !ok || errors.Is(err, auth.ErrUnauthenticated):
			w.Header().Set("WWW-Authenticate", `Basic realm="KurrentDB", charset="UTF-8"`)
			http.Error(w, "401 Unauthorized: log in as an administrator", http.StatusUnauthorized)
			return
		case err != nil:
			s.cfg.Logger.Debug("esdbnode: web UI authentication failed", "err", err)
			http.Error(w, "503 Service Unavailable", http.StatusServiceUnavailable)
			return
		case !p.IsAdmin():
			http.Error(w, "403 Forbidden: the web UI is for administrators", http.StatusForbidden)
			return
		}
	}
	s.ui.ServeHTTP(w, r)
}

func (s *Server) handleLive(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNoContent)
}

// info is the body of GET /info, shaped like EventStoreDB's.
type info struct {
	ESVersion      string          `json:"esVersion"`
	State          string          `json:"state"`
	Features       map[string]bool `json:"features"`
	Authentication infoAuth        `json:"authentication"`
}

type infoAuth struct {
	Type       string            `json:"type"`
	Properties map[string]string `json:"properties"`
}

func (s *Server) handleInfo(w http.ResponseWriter, _ *http.Request) {
	authType := "insecure"
	if s.cfg.Secure() {
		authType = "internal"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info{
		ESVersion: Version,
		State:     "leader",
		Features: map[string]bool{
			"projections":    false,
			"userManagement": s.cfg.Secure(),
			"atomPub":        false,
		},
		Authentication: infoAuth{Type: authType, Properties: map[string]string{}},
	})
}
