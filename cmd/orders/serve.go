package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode"
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
}

func (n *nodeFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&n.addr, "addr", esdbnode.DefaultAddr, "listen address of the embedded node (gRPC and web UI)")
	f.StringVar(&n.dataDir, "data", "./data", "data directory")
	f.BoolVar(&n.insecure, "insecure", false, "allow a non-loopback --addr (the node has no TLS and no users)")
}

func (a *app) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
		return nil, usageErrorf("bad --log-level %q: want debug, info, warn or error", a.logLevel)
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level})), nil
}

// startNode starts the embedded node and prints the ready line.
func (a *app) startNode(n nodeFlags, logger *slog.Logger) (*esdbnode.Server, error) {
	srv, err := esdbnode.New(esdbnode.Config{
		Addr:     n.addr,
		DataDir:  n.dataDir,
		Insecure: n.insecure,
		Logger:   logger,
		Now:      a.now,
	})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	if err := a.printReady(srv.Addr(), srv.ConnectionString()); err != nil {
		_ = srv.Close()
		return nil, err
	}
	return srv, nil
}

// checkExternal makes sure the external node answers, then prints the ready line.
func (a *app) checkExternal(ctx context.Context, connString string) error {
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
			srv, err := a.startNode(n, logger)
			if err != nil {
				return err
			}
			return runNode(ctx, srv)
		},
	}
	n.register(cmd)
	return cmd
}

func (a *app) serveCmd() *cobra.Command {
	var n nodeFlags
	cmd := &cobra.Command{
		Use:   "serve [--data DIR] [--addr HOST:PORT] [--esdb URL]",
		Short: "Run the order store (embedded node unless --esdb names one) until SIGINT or SIGTERM",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			logger, err := a.logger()
			if err != nil {
				return err
			}
			g, ctx := errgroup.WithContext(ctx)
			connString := a.esdbURL
			if a.esdbExplicit(cmd) {
				if err := a.checkExternal(ctx, connString); err != nil {
					return err
				}
			} else {
				// The node must accept connections before any client makes its first call:
				// the official client gives up for good after its discovery attempts.
				srv, err := a.startNode(n, logger)
				if err != nil {
					return err
				}
				connString = srv.ConnectionString()
				g.Go(func() error { return runNode(ctx, srv) })
			}
			components, err := a.serveComponents(connString, logger)
			if err != nil {
				stop()
				return errors.Join(err, g.Wait())
			}
			for _, c := range components {
				g.Go(func() error { return c.Run(ctx) })
			}
			if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	n.register(cmd)
	return cmd
}

// serveComponents builds the long-running parts of serve that talk to EventStoreDB at
// connString: the projections and the notification senders, as later issues add them. Each
// gets its own client and runs until serve stops.
func (a *app) serveComponents(connString string, logger *slog.Logger) ([]component, error) {
	_ = connString
	_ = logger
	return nil, nil
}
