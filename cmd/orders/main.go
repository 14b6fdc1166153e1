// Command orders is the order store's one binary: it places, pays, ships, cancels and shows
// orders through the official EventStoreDB client, runs the embedded EventStoreDB node
// ("orders node"), and runs everything a deployment needs ("orders serve").
//
// # Contract
//
// Every command takes the global --esdb URL (environment ORDERS_ESDB, default
// esdb://127.0.0.1:2113?tls=false), --json and --verbose. With --json a successful command
// prints exactly one JSON object on stdout. A failing command prints exactly one line on
// stderr, prefixed "orders: " (with --json also one object {"error": {"code", "message",
// "exitCode"}} on stdout), and exits with status 2 for usage errors and malformed input (bad
// flags, missing or extra arguments, malformed order id, bad --item syntax, zero or negative
// quantities or amounts, invalid e-mail address, a currency outside ISO 4217, non-loopback
// --addr without --insecure, contradicting node settings), 1 for everything else (unknown
// order, wrong amount, order in the wrong state, node unreachable, too many concurrent
// writers), in both cases having appended nothing, and 3 when an order command sent its
// append but the answer was lost: the outcome is unknown. An unreachable node is one short
// sentence; --verbose adds the client's detail. Amounts shown to people use the currency's
// ISO 4217 exponent (aggregate.FormatMoney); in JSON they are integers in minor units.
//
// place, pay, ship and cancel are safe to retry: their events get ids derived from the
// command (eventstore.Command), so the same command run again appends nothing and succeeds
// with "already recorded, nothing appended" (JSON "alreadyRecorded": true). place --id UUID
// chooses the order id; pay's default reference is pay-ID.
//
// serve and node run until SIGINT or SIGTERM and then exit 0 after a clean shutdown. Once the
// node accepts connections they print one line: "orders: node listening on HOST:PORT
// (esdb://HOST:PORT?tls=false)", or with --json {"addr": ..., "connectionString": ...}. serve
// runs the embedded node unless --esdb (or ORDERS_ESDB) names another node than its own
// --addr; then it checks that the named node answers and prints the same line with that
// node's address and connection string. Its first log line says which node it uses. --data
// (ORDERS_DATA) is the data directory of serve and node, and where list and projections find
// the read models unless --db (ORDERS_DB) names them.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
