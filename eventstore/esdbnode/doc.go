// Package esdbnode is an embedded single-node EventStoreDB: a gRPC server that
// the unmodified official Go client (EventStore-Client-Go v4) cannot tell from
// a real EventStoreDB 24.10 node in insecure mode, backed by the durable log of
// package eventlog and the persistent-subscription engine of package psub.
//
// Contract:
//
//   - Services: ServerFeatures (version "24.10.0"), Streams (Read, Append,
//     Delete, Tombstone; BatchAppend is not implemented and not advertised) and
//     PersistentSubscriptions (package psub). Wire behaviour follows
//     docs/protocol.md, sections 1 to 6.
//   - One TCP port serves both gRPC (HTTP/2 with prior knowledge, recognised by
//     the client preface) and HTTP/1.1: GET /health/live (204), GET /info
//     (JSON), anything else 404 unless added with Server.Handle before Start.
//   - Lifecycle, shaped like httptest.Server: New validates and starts nothing;
//     Start opens the log, seeds $users on first start, starts psub and
//     returns once the port accepts connections; Close is idempotent, ends open
//     catch-up subscriptions (status Unavailable, "server is shutting down")
//     and persistent-subscription consumer calls (their context is cancelled),
//     waits a bounded time (5 s) for other in-flight calls (then forces them),
//     and closes psub and then the log.
//   - Everything a client can hold is bounded by Config.Limits (connections,
//     silent and slow connections, header and body timeouts, gRPC streams per
//     connection, keepalive, message size 16 MiB minus 10,000 bytes as a real
//     node's). A client that cancels or hangs up is logged at debug level.
//   - Without a certificate the node binds to loopback unless Config.Insecure
//     is set: it has no TLS and no users, so every caller is trusted.
//   - With Config.CertificateFile (KurrentDB's option names) the node is
//     secure (docs/protocol.md, "The secure node"): TLS on its port (ALPN h2 for
//     gRPC, http/1.1 for the pages), users and KurrentDB's default access
//     rules and stream ACLs (package auth) on every call but ServerFeatures,
//     admin-only web UI behind Basic credentials, the HTTP users API on
//     /users/, any address.
//   - Errors reach the client only through one mapping (package
//     internal/rpcerr, shared with psub) to gRPC status codes and
//     EventStoreDB trailers; a panic in a handler is logged and returned as
//     status Unknown.
package esdbnode
