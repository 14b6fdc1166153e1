package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/orderstore/orders/eventstore"
)

// envESDB names the environment variable that gives the connection string.
const envESDB = "ORDERS_ESDB"

// defaultTimeout bounds one order command, connection included.
const defaultTimeout = 30 * time.Second

// app holds what the commands share: the injected outputs, environment, clock and id
// source, and the global flags.
type app struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	now            func() time.Time
	newID          func() uuid.UUID

	esdbURL  string
	jsonOut  bool
	verbose  bool
	timeout  time.Duration
	logLevel string

	// readData is --data of the commands that read the read models, readFlags their flags
	// (see dbFlag).
	readData  string
	readFlags interface{ Changed(name string) bool }
}

// run executes the command line args and returns the process exit status. On failure it
// prints exactly one line on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{
		stdout:    stdout,
		stderr:    stderr,
		lookupEnv: os.LookupEnv,
		now:       time.Now,
		newID:     uuid.New,
	}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil {
		msg := a.message(err)
		fmt.Fprintf(stderr, "orders: %s\n", msg)
		// --json may not have been parsed when the flags themselves were wrong.
		if a.jsonOut || slices.Contains(args, "--json") {
			_ = a.printJSON(errorJSON(err, msg))
		}
	}
	return exitCode(err)
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "orders",
		Short: "An event-sourced order store on EventStoreDB",
		Long: "orders places, pays, ships, cancels and shows orders stored as events in EventStoreDB,\n" +
			"and runs the embedded EventStoreDB node (orders node) or the whole service (orders serve).",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q (see orders --help)", args[0])
			}
			return usageErrorf("missing command (see orders --help)")
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	root.SetVersionTemplate("orders {{.Version}}\n")

	def := eventstore.DefaultConnectionString
	if v, ok := a.lookupEnv(envESDB); ok && v != "" {
		def = v
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.esdbURL, "esdb", def, "EventStoreDB connection string (env "+envESDB+")")
	pf.BoolVar(&a.jsonOut, "json", false, "print one JSON object on stdout (on failure: {\"error\": {...}})")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "add the underlying detail to error messages")
	pf.DurationVar(&a.timeout, "timeout", defaultTimeout, "time limit of an order command")
	pf.StringVar(&a.logLevel, "log-level", "info", "log level of serve and node: debug, info, warn, error")

	root.AddCommand(
		a.placeCmd(),
		a.payCmd(),
		a.shipCmd(),
		a.cancelCmd(),
		a.showCmd(),
		a.serveCmd(),
		a.nodeCmd(),
		a.subscriptionsCmd(),
		a.listCmd(),
		a.customersCmd(),
		a.revenueCmd(),
		a.projectionsCmd(),
		a.benchCmd(),
	)
	return root
}

// esdbExplicit reports whether the user named an EventStoreDB node, by flag or environment.
func (a *app) esdbExplicit(cmd *cobra.Command) bool {
	if cmd.Flags().Changed("esdb") {
		return true
	}
	v, ok := a.lookupEnv(envESDB)
	return ok && v != ""
}

// exactArgs is cobra.ExactArgs with a usage error written for people: "missing order ID",
// "unexpected argument \"x\"". names are the arguments' names in the usage line.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usageErrorf("missing %s", argName(names[len(args)]))
		case len(args) > len(names):
			return usageErrorf("unexpected argument %q", args[len(names)])
		}
		return nil
	}
}

// argName is how a message names an argument of the usage line.
func argName(name string) string {
	switch name {
	case "ID":
		return "order ID"
	case "NAME":
		return "subscription group name"
	}
	return name
}

// printJSON prints v as one JSON object on a line.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	return enc.Encode(v)
}
