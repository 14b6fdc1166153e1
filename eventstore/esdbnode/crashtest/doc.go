// Package crashtest kills a real embedded node with SIGKILL while the official
// client appends to it, restarts it on the same data directory, and checks
// what survived. It has no non-test code.
//
// Contract checked, cycle after cycle (default 20, -crash.cycles to raise;
// -crash.seed to replay a run, the seed is always logged):
//
//   - every acknowledged append is readable after the restart at its
//     revisions and at its acknowledged position, with the same ids and data;
//   - streams stay dense (revisions 0..n-1) and hold nothing but events of
//     appends that were made, in the order they were made;
//   - an append whose outcome the client never learned (in flight at the
//     kill) is all or nothing: either all its events are present,
//     consecutively, or none of them;
//   - $all agrees with the streams (same positions, strictly increasing),
//     and positions handed out after a restart are beyond everything in the
//     log before it.
//
// The test binary re-executes itself as the node: with CRASHTEST_CHILD=1,
// TestMain starts esdbnode on CRASHTEST_DIR/CRASHTEST_ADDR, prints
// "READY <addr>" on stdout and blocks until it is killed (or until its stdin
// closes, so that an orphan never outlives the parent).
package crashtest
