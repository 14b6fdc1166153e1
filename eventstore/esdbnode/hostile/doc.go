// Package hostile is the hostile-client suite of the embedded node: raw TCP
// and HTTP/2 garbage, silent connections, slow headers, request bodies that
// never arrive, clients that hang up mid-request, a flood of connections past
// the cap, oversized headers and oversized gRPC messages.
//
// The package has no non-test code. Every test starts a node with short
// limits (esdbnode.Limits) so that each bound trips within a second, attacks
// it over real loopback sockets, and proves three things: the node cuts the
// hostile client off (or answers it as a real EventStoreDB would), it still
// serves the official client during and after the attack, and it writes
// nothing for a rejected append. No test may leave an ERROR line in the
// node's log: a client must not be able to write errors into it at will.
package hostile
