// Package testutil is the home of the test helpers that more than one package of the
// application uses; it holds no code of its own, only this map:
//
//   - pgtest: a fresh PostgreSQL schema per test (the read models, the sent-log, serve);
//   - runtest: a Run(ctx) error part (consumer, runner, sender) run until the test stops it;
//   - smtptest: a real SMTP server on a loopback port, with faults switched at run time.
//
// The embedded node may import nothing outside eventstore/esdbnode (its tests included, see
// TestNodeImportsNoApplicationPackage), so the helpers that the node's tests share with the
// application's live in the node's own test package, eventstore/esdbnode/esdbnodetest:
//
//   - esdbnodetest.Start and Client: a node on a loopback port, and the official client on it;
//     StartAt and FreeAddr: a node restarted on the same address and data;
//   - esdbnodetest.Dial and NewClient: the tests' one client dialer (the application's is
//     eventstore.Connect);
//   - esdbnodetest.Buffer: a buffer safe for concurrent use (a child process's stderr);
//   - esdbnodetest/browsertest: headless Chromium for the web pages (the node's UI, serve's
//     status page).
package testutil
