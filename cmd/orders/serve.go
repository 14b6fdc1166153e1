package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/cmd/orders/statusweb"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/subscribers"
	"github.com/orderstore/orders/subscribers/notify"
)

// component is a long-running part of serve (projections and senders, as they land). Run
// blocks until ctx is done or the component fails, and returns after its goroutines exit.
type component interface {
	Run(ctx context.Context) error
}

// nodeFlags are the flags of the embedded node, shared by serve and node.
type nodeFlags struct {
	addr     string
	dataDir  string
	insecure bool
	security nodeSecurity // nodesecurity.go: limits, TLS
}

func (n *nodeFlags) register(cmd *cobra.Command, a *app) {
	f := cmd.Flags()
	f.StringVar(&n.addr, "addr", esdbnode.DefaultAddr, "listen address of the embedded node (gRPC and web UI)")
	f.StringVar(&n.dataDir, "data", a.envDataDir(), "data directory (env "+envData+")")
	f.BoolVar(&n.insecure, "insecure", false, "allow a non-loopback --addr (the node has no TLS and no users)")
	n.security.register(cmd)
}

func (a *app) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
		return nil, usageErrorf("bad --log-level %q: want debug, info, warn or error", a.logLevel)
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level})), nil
}

// startNode starts the embedded node and prints the ready line. announce runs once the
// configuration is accepted, before the node starts (and logs).
func (a *app) startNode(n nodeFlags, logger *slog.Logger, observeAppend func(time.Duration), announce func()) (*esdbnode.Server, error) {
	srv, err := esdbnode.New(n.security.apply(esdbnode.Config{
		Addr:          n.addr,
		DataDir:       n.dataDir,
		Insecure:      n.insecure,
		Logger:        logger,
		Now:           a.now,
		ObserveAppend: observeAppend,
	}))
	if err != nil {
		return nil, err
	}
	announce()
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	if err := a.printReady(srv.Addr(), srv.ConnectionString()); err != nil {
		_ = srv.Close()
		return nil, err
	}
	return srv, nil
}

// checkExternal makes sure the external node answers, then calls announce and prints the
// ready line.
func (a *app) checkExternal(ctx context.Context, connString string, announce func()) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	client, err := eventstore.Connect(connString)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := eventstore.Ping(ctx, client); err != nil {
		if errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			return &unreachableError{addr: eventstore.Address(connString), err: err}
		}
		return err
	}
	announce()
	return a.printReady(eventstore.Address(connString), connString)
}

func (a *app) printReady(addr, connString string) error {
	if a.jsonOut {
		return a.printJSON(struct {
			Addr             string `json:"addr"`
			ConnectionString string `json:"connectionString"`
		}{addr, connString})
	}
	_, err := fmt.Fprintf(a.stdout, "orders: node listening on %s (%s)\n", addr, connString)
	return err
}

// runNode keeps srv running until ctx is done, then closes it.
func runNode(ctx context.Context, srv *esdbnode.Server) error {
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		return fmt.Errorf("close node: %w", err)
	}
	return nil
}

func (a *app) nodeCmd() *cobra.Command {
	var n nodeFlags
	cmd := &cobra.Command{
		Use:   "node [--addr HOST:PORT] [--data DIR] [--insecure]",
		Short: "Run the embedded EventStoreDB node alone, until SIGINT or SIGTERM",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			logger, err := a.logger()
			if err != nil {
				return err
			}
			srv, err := a.startNode(n, logger, nil, func() {})
			if err != nil {
				return err
			}
			return runNode(ctx, srv)
		},
	}
	n.register(cmd, a)
	cmd.AddCommand(a.nodeUsersCmd()) // nodeusers.go
	return cmd
}

func (a *app) serveCmd() *cobra.Command {
	var n nodeFlags
	opts := serveOptions{latency: new(latency)}
	cmd := &cobra.Command{
		Use:   "serve [--data DIR] [--addr HOST:PORT] [--esdb URL] [--db URL] [--http HOST:PORT]",
		Short: "Run the order store (embedded node unless --esdb names one) until SIGINT or SIGTERM",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			logger, err := a.logger()
			if err != nil {
				return err
			}
			external, err := a.serveUsesExternal(cmd, n)
			if err != nil {
				return err
			}
			if err := opts.validate(); err != nil {
				return err
			}
			g, ctx := errgroup.WithContext(ctx)
			connString := a.esdbURL
			// The embedded node closes after every component has stopped, so that no
			// subscription sees the node go away under it on a clean shutdown.
			closeNode := func() error { return nil }
			if external {
				// The first log line says which node serve uses, once it is known to answer.
				announce := func() {
					logger.Info("using an external EventStoreDB node", "esdb", eventstore.Address(a.esdbURL), "from", a.esdbSource(cmd))
				}
				// The official client does not give up its connection attempts when
				// ctx ends: wait for the check or for SIGINT/SIGTERM, whichever
				// comes first (a signal before the node answered is a shutdown).
				checked := make(chan error, 1)
				go func() { checked <- a.checkExternal(ctx, connString, announce) }()
				select {
				case err := <-checked:
					if err != nil {
						if ctx.Err() != nil {
							return nil
						}
						return err
					}
				case <-ctx.Done():
					return nil
				}
			} else {
				// The node must accept connections before any client makes its first call:
				// the official client gives up for good after its discovery attempts.
				ownConn, err := n.security.servable(a.esdbURL, a.esdbExplicit(cmd))
				if err != nil {
					return err
				}
				announce := func() {
					logger.Info("using the embedded EventStoreDB node", "addr", n.addr, "data", n.dataDir)
				}
				srv, err := a.startNode(n, logger, opts.latency.observeAppend, announce)
				if err != nil {
					return err
				}
				connString = cmp.Or(ownConn, srv.ConnectionString())
				closeNode = func() error {
					if err := srv.Close(); err != nil {
						return fmt.Errorf("close node: %w", err)
					}
					return nil
				}
			}
			opts.dataDir = n.dataDir
			components, closeParts, err := a.serveComponents(ctx, connString, opts, logger)
			if err != nil {
				stop()
				if ctx.Err() != nil && errors.Is(err, context.Canceled) {
					// SIGINT or SIGTERM while the components were starting: a
					// shutdown, not a failure.
					err = nil
				}
				return errors.Join(err, g.Wait(), closeNode())
			}
			for _, c := range components {
				g.Go(func() error { return c.Run(ctx) })
			}
			err = g.Wait()
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			// Every component has stopped: what they shared (the read-model store), then the
			// node they used, can go.
			return errors.Join(err, closeParts(), closeNode())
		},
	}
	n.register(cmd, a)
	opts.register(cmd, a)
	return cmd
}

// serveUsesExternal decides which node serve uses. Without --esdb or ORDERS_ESDB, or when the
// connection string names serve's own --addr (a user who exported ORDERS_ESDB for the CLI),
// serve runs the embedded node. When it names another node, serve uses that one, unless the
// settings contradict each other, which is a usage error naming both: --addr given with
// another node (the embedded node's address has no use then), or ORDERS_ESDB from the
// environment with --data given on the command line (a user restarting serve in a terminal
// where ORDERS_ESDB was exported for the CLI). --esdb and --data on one command line are
// deliberate: --data then holds the read models and the mail directory only.
func (a *app) serveUsesExternal(cmd *cobra.Command, n nodeFlags) (bool, error) {
	if !a.esdbExplicit(cmd) {
		return false, nil
	}
	if _, err := eventstore.Connect(a.esdbURL); err != nil {
		return false, err // malformed: exit 2
	}
	if sameAddr(eventstore.Address(a.esdbURL), n.addr) {
		return false, nil
	}
	var clash []string
	if cmd.Flags().Changed("addr") {
		clash = append(clash, "--addr "+n.addr)
	}
	if cmd.Flags().Changed("data") && !cmd.Flags().Changed("esdb") {
		clash = append(clash, "--data "+n.dataDir)
	}
	if len(clash) > 0 {
		hint := "drop --esdb to run the embedded node"
		if !cmd.Flags().Changed("esdb") {
			hint = "unset " + envESDB + " to run the embedded node"
		}
		return false, usageErrorf("%s names another node (%s), but %s asks for the embedded node: %s, or drop %s to use that node",
			a.esdbSource(cmd), eventstore.Address(a.esdbURL), strings.Join(clash, " and "), hint, strings.Join(clash, " and "))
	}
	return true, nil
}

// esdbSource names where the connection string came from, for messages.
func (a *app) esdbSource(cmd *cobra.Command) string {
	if cmd.Flags().Changed("esdb") {
		return "--esdb " + a.esdbURL
	}
	return envESDB + "=" + a.esdbURL
}

// sameAddr reports whether two host:port addresses name the same listener, taking localhost
// for 127.0.0.1.
func sameAddr(x, y string) bool {
	norm := func(s string) string {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return s
		}
		if host == "localhost" || host == "" {
			host = "127.0.0.1"
		}
		return net.JoinHostPort(host, port)
	}
	return norm(x) == norm(y)
}

// serveOptions are serve's flags beyond the node's.
type serveOptions struct {
	dataDir    string        // the node's --data, also the home of the default read-model database
	db         string        // --db: read-model database URL ("" = <data>/readmodels.db)
	httpAddr   string        // --http
	smtpURL    string        // --smtp: "" = .eml files under mailDir
	mailDir    string        // --mail-dir: "" = <data>/mail
	stallAfter time.Duration // --stall-after
	mailFrom   string        // --mail-from: the From address of the e-mails
	latency    *latency      // feeds /metrics' latency histograms
}

// latency forwards the embedded node's append times and the projections' and the sender's
// handler times to the status server's histograms once it exists (the node starts before
// it). Until then, and with an external node (whose appends serve does not see),
// observations are dropped: a nil *statusweb.Metrics ignores them.
type latency struct {
	m atomic.Pointer[statusweb.Metrics]
}

func (l *latency) observeAppend(d time.Duration) { l.m.Load().ObserveAppend(d) }

// wrapOne times each call of the handler of the subscriber name.
func (l *latency) wrapOne(name string, h subscribers.Handler) subscribers.Handler {
	return func(ctx context.Context, ev subscribers.Event) error {
		start := time.Now()
		err := h(ctx, ev)
		l.m.Load().ObserveHandle(name, time.Since(start))
		return err
	}
}

// wrap times each call of a projection's batch handler.
func (l *latency) wrap(name string, h subscribers.BatchHandler) subscribers.BatchHandler {
	return func(ctx context.Context, evs []subscribers.Event) error {
		start := time.Now()
		err := h(ctx, evs)
		l.m.Load().ObserveHandle(name, time.Since(start))
		return err
	}
}

func (o *serveOptions) register(cmd *cobra.Command, a *app) {
	f := cmd.Flags()
	f.StringVar(&o.db, "db", a.envDB(), "read-model database: postgres://... or a SQLite file (default <data>/readmodels.db; env "+envDB+")")
	f.StringVar(&o.httpAddr, "http", defaultHTTPAddr, "listen address of the HTTP server (status page, /healthz, /metrics, /status)")
	f.StringVar(&o.smtpURL, "smtp", "", "send e-mail through this SMTP server, smtp://[user:pass@]host:port (STARTTLS when offered); default: .eml files under --mail-dir")
	f.StringVar(&o.mailDir, "mail-dir", "", "directory of the .eml files when --smtp is not given (default <data>/mail)")
	f.StringVar(&o.mailFrom, "mail-from", a.envMailFrom(), "From address of the e-mails (env "+envMailFrom+"); a real relay given with --smtp may refuse the default")
	f.DurationVar(&o.stallAfter, "stall-after", 30*time.Second, "how long a lagging subscriber may go without progress before /healthz reports it stalled")
}

// envMailFrom names the environment variable that gives --mail-from.
const envMailFrom = "ORDERS_MAIL_FROM"

func (a *app) envMailFrom() string {
	if v, ok := a.lookupEnv(envMailFrom); ok && v != "" {
		return v
	}
	return notify.DefaultFrom
}

// validate checks the options that are plain input, before anything starts.
func (o *serveOptions) validate() error {
	if a, err := mail.ParseAddress(o.mailFrom); err != nil || a.Name != "" || a.Address != o.mailFrom {
		return usageErrorf("bad --mail-from %q: want a bare e-mail address such as orders@example.com", o.mailFrom)
	}
	return nil
}

// serveComponents builds the long-running parts of serve that talk to EventStoreDB at
// connString: the projections' runner, the e-mail sender and the HTTP server (status page,
// /healthz, /metrics). Each makes its own clients and runs until serve stops. closeParts
// closes what they share (the read-model store, which also holds the sender's sent-log) and
// must be called once every component's Run has returned. On error nothing is left open.
func (a *app) serveComponents(ctx context.Context, connString string, opts serveOptions, logger *slog.Logger) (_ []component, closeParts func() error, err error) {
	dbURL := opts.db
	if dbURL == "" {
		dbURL = filepath.Join(opts.dataDir, defaultDBFile)
	}
	store, err := projections.Open(ctx, dbURL, projections.WithLogger(logger))
	if err != nil {
		if ctx.Err() != nil {
			// Stopped (SIGINT/SIGTERM) while starting: a clean shutdown, nothing to close.
			return nil, func() error { return nil }, nil
		}
		return nil, nil, fmt.Errorf("open read models: %w", err)
	}
	defer func() {
		if err != nil {
			_ = store.Close()
		}
	}()
	dial := subscribers.DialString(connString, eventstore.WithLogger(logger))
	runner, err := projections.NewRunner(store, dial,
		projections.RunnerConfig{Consumer: subscribers.Config{Logger: logger}, Logger: logger, Wrap: opts.latency.wrap})
	if err != nil {
		return nil, nil, err
	}
	mailDir := opts.mailDir
	if mailDir == "" {
		mailDir = filepath.Join(opts.dataDir, "mail")
	}
	transport, err := notify.NewTransport(opts.smtpURL, mailDir)
	if err != nil {
		return nil, nil, err
	}
	senderCfg := notify.Config{Logger: logger, Now: a.now, From: opts.mailFrom, Wrap: func(h subscribers.Handler) subscribers.Handler {
		return opts.latency.wrapOne(notify.DefaultGroup, h)
	}}
	w, r := store.DB()
	sent, err := notify.OpenSentLog(ctx, w, r)
	if err != nil {
		return nil, nil, err
	}
	sender, err := notify.New(dial, sent, transport, senderCfg)
	if err != nil {
		return nil, nil, err
	}
	src := &statusSource{runner: runner, sender: sender, group: notify.DefaultGroup, dial: dial}
	figures := storeFigures{store: store}
	status, err := statusweb.New(src, statusweb.Options{StallAfter: opts.stallAfter, Logger: logger, Figures: figures, Money: aggregate.FormatMoney})
	if err != nil {
		return nil, nil, err
	}
	opts.latency.m.Store(status.Metrics())
	mux := http.NewServeMux()
	// /status: the projections' own JSON, with the figures.
	mux.Handle("/status", withFigures(runner.Handler(), figures))
	mux.Handle("/", status) // status page, /status.json, /healthz, /metrics
	web, err := listenHTTP(opts.httpAddr, mux, logger)
	if err != nil {
		return nil, nil, err
	}
	closeParts = func() error { return errors.Join(src.Close(), store.Close()) }
	return []component{runner, sender, web}, closeParts, nil
}

// httpComponent is serve's HTTP server, listening from construction so that a busy port fails
// serve at once.
type httpComponent struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
}

func listenHTTP(addr string, h http.Handler, logger *slog.Logger) (*httpComponent, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	logger.Info("http listening", "addr", ln.Addr().String())
	return &httpComponent{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln: ln, log: logger}, nil
}

func (h *httpComponent) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- h.srv.Serve(h.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := h.srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}
