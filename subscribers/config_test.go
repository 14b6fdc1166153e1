package subscribers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderstore/orders/subscribers"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	dial := subscribers.DialString("esdb://127.0.0.1:1?tls=false")
	h := func(context.Context, subscribers.Event) error { return nil }
	g := subscribers.Group{Name: "g"}
	tests := []struct {
		name string
		dial subscribers.Dial
		cfg  subscribers.Config
		h    subscribers.Handler
		ok   bool
	}{
		{name: "defaults", dial: dial, cfg: subscribers.Config{Group: g}, h: h, ok: true},
		{name: "stream group", dial: dial, cfg: subscribers.Config{Group: subscribers.Group{Name: "g", Stream: "s"}}, h: h, ok: true},
		{name: "no group name", dial: dial, cfg: subscribers.Config{}, h: h},
		{name: "prefixes on a stream group", dial: dial, cfg: subscribers.Config{Group: subscribers.Group{Name: "g", Stream: "s", StreamPrefixes: []string{"order-"}}}, h: h},
		{name: "empty prefix", dial: dial, cfg: subscribers.Config{Group: subscribers.Group{Name: "g", StreamPrefixes: []string{""}}}, h: h},
		{name: "negative buffer", dial: dial, cfg: subscribers.Config{Group: g, BufferSize: -1}, h: h},
		{name: "negative batch", dial: dial, cfg: subscribers.Config{Group: g, MaxBatch: -1}, h: h},
		{name: "negative attempts", dial: dial, cfg: subscribers.Config{Group: g, MaxAttempts: -1}, h: h},
		{name: "negative connect timeout", dial: dial, cfg: subscribers.Config{Group: g, ConnectTimeout: -time.Second}, h: h},
		{name: "nil dial", cfg: subscribers.Config{Group: g}, h: h},
		{name: "nil handler", dial: dial, cfg: subscribers.Config{Group: g}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := subscribers.New(tt.dial, tt.cfg, tt.h)
			if tt.ok {
				if err != nil || c == nil {
					t.Fatalf("New = %v, %v; want a consumer", c, err)
				}
				if st := c.Stats(); st.Group != tt.cfg.Group.Key() || st.Connected {
					t.Errorf("fresh Stats = %+v", st)
				}
				return
			}
			if !errors.Is(err, subscribers.ErrInvalidConfig) {
				t.Fatalf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := subscribers.NewBatch(dial, subscribers.Config{Group: g}, nil); !errors.Is(err, subscribers.ErrInvalidConfig) {
		t.Errorf("NewBatch(nil handler) = %v, want ErrInvalidConfig", err)
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("bad")
	tests := []struct {
		name      string
		err       error
		permanent bool
		text      string
	}{
		{name: "plain", err: base, text: "bad"},
		{name: "marked", err: subscribers.Permanent(base), permanent: true, text: "bad"},
		{name: "wrapped mark", err: fmt.Errorf("decode: %w", subscribers.Permanent(base)), permanent: true, text: "decode: bad"},
		{name: "nil", err: subscribers.Permanent(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := subscribers.IsPermanent(tt.err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tt.permanent)
			}
			if tt.err == nil {
				return
			}
			if tt.err.Error() != tt.text {
				t.Errorf("text = %q, want %q", tt.err.Error(), tt.text)
			}
			if !errors.Is(tt.err, base) {
				t.Error("does not wrap the original error")
			}
		})
	}
}

func TestDefaultDelays(t *testing.T) {
	t.Parallel()
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, 80 * time.Millisecond, 100 * time.Millisecond},
		{2, 160 * time.Millisecond, 200 * time.Millisecond},
		{4, 640 * time.Millisecond, 800 * time.Millisecond},
		{10, 4 * time.Second, 5 * time.Second},
		{1000, 4 * time.Second, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("attempt ", tt.attempt), func(t *testing.T) {
			t.Parallel()
			for range 100 {
				if d := subscribers.DefaultBackoff(tt.attempt); d < tt.min || d > tt.max {
					t.Fatalf("DefaultBackoff(%d) = %v, want %v..%v", tt.attempt, d, tt.min, tt.max)
				}
			}
			if d := subscribers.DefaultReconnect(tt.attempt); d != tt.max {
				t.Errorf("DefaultReconnect(%d) = %v, want %v", tt.attempt, d, tt.max)
			}
		})
	}
}

func TestGroupNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		g            subscribers.Group
		key, parked  string
		resolveLinks bool
	}{
		{subscribers.Group{Name: "summaries"}, "$all::summaries", "$persistentsubscription-$all::summaries-parked", false},
		{subscribers.Group{Name: "mail", Stream: "$ce-order"}, "$ce-order::mail", "$persistentsubscription-$ce-order::mail-parked", true},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			if tt.g.Key() != tt.key || tt.g.ParkedStream() != tt.parked {
				t.Errorf("Key, ParkedStream = %q, %q; want %q, %q", tt.g.Key(), tt.g.ParkedStream(), tt.key, tt.parked)
			}
			s := subscribers.DefaultSettings(tt.g.Stream, subscribers.DefaultMaxAttempts)
			if s.ResolveLinks != tt.resolveLinks || s.MaxRetryCount <= subscribers.DefaultMaxAttempts ||
				s.Strategy != subscribers.RoundRobin || s.MessageTimeout != 30*time.Second {
				t.Errorf("DefaultSettings = %+v", s)
			}
			c := subscribers.ClientSettings(s)
			if c.ResolveLinkTos != s.ResolveLinks || c.MaxRetryCount != int32(s.MaxRetryCount) ||
				c.ConsumerStrategyName != esdb.ConsumerStrategyRoundRobin || c.MessageTimeout != 30_000 ||
				c.CheckpointAfter != 1_000 || c.CheckpointLowerBound != 1 || c.CheckpointUpperBound != 500 ||
				c.MaxSubscriberCount != esdb.SubscriberCountUnlimited {
				t.Errorf("ClientSettings(DefaultSettings) = %+v", c)
			}
		})
	}
}
