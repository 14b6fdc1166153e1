// Package bench holds the project's cross-system benchmarks: it measures the
// Streams service of an EventStoreDB-compatible node through the official
// client (github.com/EventStore/EventStore-Client-Go/v4/esdb), puts each
// figure next to the protocol ceiling and next to peer stores, and runs the
// application's order flow on the node. It lives outside the node because it
// drives the application (aggregate, eventstore, projections); the node's own
// micro-benchmarks stay in the node's packages (eventlog, psub).
//
// Contract:
//
//   - Workloads (Harness.AppendSingle, AppendConcurrent, AppendBatch, ReadAll)
//     take any *esdb.Client and return a Result with the number of calls
//     (Ops), the number of events moved (Events), the wall time and per-call
//     latency percentiles. They never bypass the client, so the same workload
//     runs unchanged against the embedded node, a real EventStoreDB/KurrentDB
//     node or the Stub. In every workload n counts events, not calls.
//
//   - Append workloads write order-like events (~250 bytes of JSON) to distinct
//     streams "bench-<uuid>", each writer cycling through its own streams with
//     the expected revision it got back from the previous append (NoStream for
//     the first), as an application using optimistic concurrency would.
//
//   - ReadAll reads $all forwards in pages from Start, continuing from the last
//     position seen (the event at that position, which a forwards read returns
//     again, is skipped) and starting over at Start when it reaches the end, so
//     a small log can serve a long read. Preload fills a log for it untimed.
//
//   - Stub is a gRPC server with no storage that speaks just enough of the
//     Streams and ServerFeatures services for the workloads: it consumes every
//     proposed message and answers appends with incrementing revisions and
//     positions, and answers $all reads with synthetic events. What the client,
//     gRPC and loopback cost is the ceiling; Compare reports each figure of the
//     node as a ratio to it. NewSyncingStub is a Stub that, before
//     answering each append, writes the append's bytes to a preallocated
//     file and waits for an fdatasync, with group commit: with
//     Options.SyncDir, Compare runs the appends on it too, the append
//     ceilings as measured (Row.Synced), and WriteCeiling prints them beside
//     AppendCeiling's sum of the stub's round trip and a sync (MeasureSync).
//
//   - Compare starts an embedded node (or uses Options.NodeConnectionString)
//     and a Stub, runs the four workloads on both, interleaved, and returns one
//     Row per workload; WriteMarkdown renders them as the README table.
//
//   - The peer suite (RunSuite, behind `orders bench`) runs the same
//     client-side workloads against Targets: the node through the official
//     client (in-process, as a child process, or external), a PostgreSQL
//     event table through pgx (one row per event, a global identity,
//     unique (stream, revision), synchronous_commit=on, in a schema of its
//     own that it drops), and NATS JetStream (its own nats-server child with
//     sync_interval: always, one subject per stream, expected last sequence
//     per subject). Workloads: append-<w> for each writer count (single
//     events, each writer its own streams with the token of its previous
//     append), batch-<n>, read-all from the start in pages, and a catch-up
//     subscriber from the start; each at every store size (preloaded
//     untimed, then settled: the node's process left to finish its index's
//     compactions until it is idle, PostgreSQL VACUUM (ANALYZE) and
//     CHECKPOINT, each timed and reported with the preload), Rounds times
//     interleaved across targets, the median round
//     reported with its ratio to the best target, plus the node's resident
//     memory at each size. A peer that cannot start is reported "not run".
//     At the first size the suite also runs the order flow (OrderFlow):
//     concurrent clients place and pay orders through eventstore.Repository
//     while projections.Runner applies them, and reports orders/s and how long
//     the projections took to catch up.
//
// The Go benchmarks BenchmarkStreams/{node,stub}/{append-1,append-16,batch-100,read-all}
// report events/s; `go test -run TestCompare -compare.full -v` prints the table.
// `go test -run TestSyncingStubAgainstPostgresFull -compare.pg -v` runs the
// peer suite's append workloads on NewSyncingStub, the node and PostgreSQL,
// interleaved, and prints how each compares with PostgreSQL.
package bench
