package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/cmd/orders/statusweb"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"github.com/orderstore/orders/projections"
)

// TestUnknownEventTypeReachesMetrics: an event of a type this program does not know, appended
// to an order stream (a refund written by a newer writer), is applied by the real projections
// as a no-op and counted per projection and type in /metrics, beside the sender's counts.
func TestUnknownEventTypeReachesMetrics(t *testing.T) {
	srv := esdbnodetest.Start(t)
	runner := runProjections(t, srv.ConnectionString(), projections.RunnerConfig{})
	status, err := statusweb.New(&statusSource{runner: runner}, statusweb.Options{})
	require.NoError(t, err)
	hs := httptest.NewServer(status)
	t.Cleanup(hs.Close)

	client := esdbnodetest.Client(t, srv)
	repo, err := eventstore.NewRepository(client, eventstore.RepositoryConfig{})
	require.NoError(t, err)
	id := uuid.NewString()
	md := eventstore.CommandMetadata(uuid.NewString(), "unknown-test")
	_, err = repo.Execute(t.Context(), id, md, func(o *aggregate.Order) error {
		return o.Place(aggregate.PlaceOrder{Customer: "ann@example.com", Currency: "EUR",
			Lines: []aggregate.Line{{SKU: "TEA", Quantity: 1, UnitPrice: 500}}}, time.Now())
	})
	require.NoError(t, err)
	_, err = client.AppendToStream(t.Context(), eventstore.StreamPrefix+id, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(0)},
		esdb.EventData{EventType: "OrderRefunded", ContentType: esdb.ContentTypeJson, Data: []byte(`{"amount":500}`)})
	require.NoError(t, err)

	want := `orders_subscriber_unknown_events_total{kind="projection",name="order_summaries",type="OrderRefunded"} 1`
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(hs.URL + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		if strings.Contains(string(body), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %s; unknown lines:\n%s", want, grepLines(string(body), "unknown"))
		}
		time.Sleep(50 * time.Millisecond) // polling /metrics: the count has no event to wait on
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
