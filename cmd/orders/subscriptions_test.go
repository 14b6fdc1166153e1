package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

// runSubs runs the command in process against the node at url.
func runSubs(t *testing.T, url string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.WithoutCancel(t.Context()), append([]string{"--esdb", url}, args...), &out, &errOut)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// subsWait polls cond until it holds (the node has no event for parked counts).
func subsWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestSubscriptionsCommands(t *testing.T) {
	srv := esdbnodetest.Start(t)
	client := esdbnodetest.Client(t, srv)
	url := srv.ConnectionString()
	ctx := t.Context()

	t.Run("no groups", func(t *testing.T) {
		r := runSubs(t, url, "subscriptions", "list")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "no persistent subscription groups")
	})

	// One order, a group on its stream with one parked event, and a group on $all.
	repo, err := eventstore.NewRepository(client, eventstore.RepositoryConfig{})
	require.NoError(t, err)
	id := uuid.NewString()
	_, err = repo.Execute(ctx, id, eventstore.Metadata{}, func(o *aggregate.Order) error {
		return o.Place(aggregate.PlaceOrder{Customer: "a@example.com", Currency: "EUR", Lines: []aggregate.Line{{SKU: "B", Quantity: 1, UnitPrice: 100}}}, time.Now())
	})
	require.NoError(t, err)
	stream := eventstore.StreamName(id)
	settings := esdb.SubscriptionSettingsDefault()
	require.NoError(t, client.CreatePersistentSubscription(ctx, stream, "parker", esdb.PersistentStreamSubscriptionOptions{Settings: &settings, StartFrom: esdb.Start{}}))
	require.NoError(t, client.CreatePersistentSubscriptionToAll(ctx, "all-group", esdb.PersistentAllSubscriptionOptions{Settings: &settings, StartFrom: esdb.Start{}}))

	// The deadline ends a Recv that would otherwise wait forever.
	subCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	sub, err := client.SubscribeToPersistentSubscription(subCtx, stream, "parker", esdb.SubscribeToPersistentSubscriptionOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	recv := func() *esdb.ResolvedEvent {
		for {
			ev := sub.Recv()
			require.Nil(t, ev.SubscriptionDropped)
			if ev.EventAppeared != nil {
				return ev.EventAppeared.Event
			}
		}
	}
	first := recv()
	require.NoError(t, sub.Nack("test parks it", esdb.NackActionPark, first))
	parked := func() int64 {
		info, err := client.GetPersistentSubscriptionInfo(ctx, stream, "parker", esdb.GetPersistentSubscriptionOptions{})
		return map[bool]int64{true: info.Stats.ParkedMessagesCount}[err == nil]
	}
	subsWait(t, "one parked message", func() bool { return parked() == 1 })

	t.Run("list", func(t *testing.T) {
		r := runSubs(t, url, "subscriptions", "list")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "PARKED")
		assert.Contains(t, r.stdout, "parker")
		assert.Contains(t, r.stdout, "all-group")

		r = runSubs(t, url, "--json", "subscriptions", "list")
		require.Equal(t, 0, r.code, r.stderr)
		var out struct{ Subscriptions []subscriptionJSON }
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
		byGroup := map[string]subscriptionJSON{}
		for _, s := range out.Subscriptions {
			byGroup[s.Group] = s
		}
		require.Contains(t, byGroup, "parker")
		require.Contains(t, byGroup, "all-group")
		assert.Equal(t, stream, byGroup["parker"].Source)
		assert.Equal(t, int64(1), byGroup["parker"].Parked)
		assert.Equal(t, 1, byGroup["parker"].Connections)
		assert.Equal(t, "$all", byGroup["all-group"].Source)
	})

	t.Run("info", func(t *testing.T) {
		r := runSubs(t, url, "subscriptions", "info", "parker", "--stream", stream)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Regexp(t, `parked:\s+1`, r.stdout)
		assert.Regexp(t, `connections:\s+1`, r.stdout)

		r = runSubs(t, url, "--json", "subscriptions", "info", "all-group")
		require.Equal(t, 0, r.code, r.stderr)
		var out subscriptionJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
		assert.Equal(t, "all-group", out.Group)
		assert.Equal(t, "$all", out.Source)
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name   string
			args   []string
			code   int
			stderr string
		}{
			{"unknown group", []string{"subscriptions", "info", "nope"}, 1, "orders: persistent subscription group \"nope\" on $all not found\n"},
			{"group on the wrong stream", []string{"subscriptions", "info", "parker"}, 1, "orders: persistent subscription group \"parker\" on $all not found\n"},
			{"replay unknown group", []string{"subscriptions", "replay-parked", "nope"}, 1, "orders: persistent subscription group \"nope\" on $all not found"},
			{"missing name", []string{"subscriptions", "info"}, 2, "orders: missing subscription group name"},
			{"bad stop-at", []string{"subscriptions", "replay-parked", "parker", "--stop-at", "-1"}, 2, "orders: --stop-at must be positive"},
			{"unknown subcommand", []string{"subscriptions", "frob"}, 2, "orders: unknown subscriptions command"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := runSubs(t, url, tt.args...)
				assert.Equal(t, tt.code, r.code)
				assert.Contains(t, r.stderr, tt.stderr)
				assert.Equal(t, 1, bytes.Count([]byte(r.stderr), []byte("\n")), "one line: %q", r.stderr)
			})
		}
	})

	t.Run("replay-parked", func(t *testing.T) {
		r := runSubs(t, url, "subscriptions", "replay-parked", "parker", "--stream", stream)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "replaying 1 parked message(s) of group parker on "+stream)
		again := recv()
		assert.Equal(t, first.Event.EventID, again.Event.EventID, "the parked event comes back")
		require.NoError(t, sub.Ack(again))
		subsWait(t, "no parked message", func() bool { return parked() == 0 })
	})

	t.Run("unreachable node", func(t *testing.T) {
		r := runSubs(t, "esdb://127.0.0.1:1?tls=false", "--timeout", "5s", "subscriptions", "list")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "orders: cannot reach EventStoreDB at 127.0.0.1:1")
	})
}
