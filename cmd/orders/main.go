// Command orders is the order store's one binary: it places, pays, ships, cancels and shows
// orders through the official EventStoreDB client, runs the embedded EventStoreDB node
// ("orders node"), and runs everything a deployment needs ("orders serve").
//
// # Contract
//
// Every command takes the global --esdb URL (environment ORDERS_ESDB, default
// esdb://127.0.0.1:2113?tls=false) and --json. With --json a successful command prints exactly
// one JSON object on stdout. A failing command prints exactly one line on stderr, prefixed
// "orders: ", and exits with status 2 for usage errors and malformed input (bad flags,
// malformed order id, bad --item syntax, zero or negative quantities or amounts, invalid
// e-mail address or currency, non-loopback --addr without --insecure), 1 for everything else
// (unknown order, wrong amount, order in the wrong state, node unreachable, too many
// concurrent writers), in both cases having appended nothing, and 3 when an order command
// sent its append but the answer was lost: the outcome is unknown.
//
// place, pay, ship and cancel are safe to retry: their events get ids derived from the
// command (eventstore.Command), so the same command run again appends nothing and succeeds
// with "already recorded, nothing appended" (JSON "alreadyRecorded": true). place --id UUID
// chooses the order id; pay's default reference is pay-ID.
//
// serve and node run until SIGINT or SIGTERM and then exit 0 after a clean shutdown. Once the
// node accepts connections they print one line: "orders: node listening on HOST:PORT
// (esdb://HOST:PORT?tls=false)", or with --json {"addr": ..., "connectionString": ...}. serve
// with an explicit --esdb (or ORDERS_ESDB) runs no embedded node: it checks that the named node
// answers and prints the same line with that node's address and connection string.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
