// Package contract is the Streams contract suite of the embedded node: it pins,
// through the unmodified official client
// (github.com/EventStore/EventStore-Client-Go/v4/esdb v4.2.0), every behaviour
// of docs/protocol.md sections 2 to 6 that a client can observe, and, against
// a secure node, section 7.
//
// The package has no non-test code. Its tests run against one of two targets,
// chosen by a single helper:
//
//   - an external EventStoreDB or KurrentDB node when the environment variable
//     ORDERS_TEST_ESDB holds a connection string (for example
//     "esdb://localhost:2113?tls=false"); every test then uses stream names
//     unique to the run and never assumes an empty $all, so the suite can share
//     a node with other users;
//   - otherwise an embedded node (package esdbnode) started per test on
//     127.0.0.1:0 in a temporary directory by package esdbnodetest.
//
// Contract pinned (see the tests for the exact cases): ServerFeatures as the
// client sees it; Append with every expected-revision variant on absent,
// existing, soft-deleted and tombstoned streams, wrong-expected-version
// results, idempotent re-append, the 1 MiB append limit; stream and $all reads
// in both directions with their inclusive/exclusive bounds; positions,
// creation time, content type and custom metadata; stream metadata ($maxCount,
// $maxAge, $tb, custom keys); soft delete and tombstone; link resolution;
// seeded system streams; catch-up subscriptions to a stream and to $all, with
// and without server-side filters; HTTP/2 keepalive tolerance; and a racing
// test of concurrent writers against concurrent subscribers.
package contract
