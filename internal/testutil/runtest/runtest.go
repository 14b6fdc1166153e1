// Package runtest runs a long-running part of the application (anything with
// Run(ctx) error: a consumer, the projections' runner, a sender) in a test.
//
// Contract: Start calls run in a goroutine with a context of its own, and
// returns stop, which cancels that context and waits for run to return: a
// non-nil error, or no return within grace, fails the test. stop is
// idempotent and registered with tb.Cleanup, so a test that never calls it
// still stops what it started.
package runtest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Start runs run until stop is called (or the test ends); see the package doc.
func Start(tb testing.TB, run func(context.Context) error, grace time.Duration) (stop func()) {
	tb.Helper()
	// Not tb.Context(): it is cancelled before cleanups run, and stop decides when run ends.
	ctx, cancel := context.WithCancel(context.WithoutCancel(tb.Context()))
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("Run returned %v, want nil", err)
				}
			case <-t.C:
				tb.Errorf("Run did not return within %v of cancel", grace)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}
