package eventstore_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// recorded turns what Encode produced into what a read returns, as the node stores it.
func recorded(d esdb.EventData, stream string, rev uint64) *esdb.RecordedEvent {
	ct := "application/octet-stream"
	if d.ContentType == esdb.ContentTypeJson {
		ct = "application/json"
	}
	return &esdb.RecordedEvent{
		EventID: d.EventID, EventType: d.EventType, ContentType: ct, StreamID: stream,
		EventNumber: rev, Data: d.Data, UserMetadata: d.Metadata,
	}
}

func TestCodecRoundTrip(t *testing.T) {
	id := uuid.NewString()
	events := []struct {
		name string
		e    aggregate.Event
	}{
		{"placed", aggregate.OrderPlaced{OrderID: id, Customer: "a@example.com", Lines: []aggregate.Line{{SKU: "B", Quantity: 2, UnitPrice: 150}}, Currency: "EUR", Total: 300, PlacedAt: t0}},
		{"paid", aggregate.OrderPaid{OrderID: id, PaymentRef: "r1", Amount: 300, Currency: "EUR", PaidAt: t0}},
		{"shipped", aggregate.OrderShipped{OrderID: id, ShippedAt: t0}},
		{"cancelled", aggregate.OrderCancelled{OrderID: id, Reason: "changed mind", CancelledAt: t0}},
	}
	for _, tc := range events {
		t.Run(tc.name, func(t *testing.T) {
			eventID := uuid.New()
			md := eventstore.CommandMetadata("cmd-1", "test")
			d, err := eventstore.Encode(eventID, tc.e, md)
			require.NoError(t, err)
			require.Equal(t, eventID, d.EventID)
			require.Equal(t, tc.e.EventType(), d.EventType)
			require.Equal(t, esdb.ContentTypeJson, d.ContentType)

			// EventStoreDB's own metadata keys.
			var raw map[string]any
			require.NoError(t, json.Unmarshal(d.Metadata, &raw))
			require.Equal(t, "cmd-1", raw["$correlationId"])
			require.Equal(t, "cmd-1", raw["$causationId"])

			got, gotMD, err := eventstore.Decode(recorded(d, eventstore.StreamName(id), 0))
			require.NoError(t, err)
			require.Equal(t, tc.e, got)
			require.Equal(t, md, gotMD)
		})
	}
}

func TestMetadataCausedBy(t *testing.T) {
	cause := uuid.New()
	md := eventstore.CommandMetadata("corr", "cli").CausedBy(cause, "mailer")
	require.Equal(t, eventstore.Metadata{CorrelationID: "corr", CausationID: cause.String(), Source: "mailer"}, md)
}

func TestDecodeRejects(t *testing.T) {
	good, err := eventstore.Encode(uuid.New(), aggregate.OrderShipped{OrderID: "x", ShippedAt: t0}, eventstore.Metadata{})
	require.NoError(t, err)
	tests := []struct {
		name   string
		mutate func(*esdb.RecordedEvent)
		also   error
	}{
		{"unknown type", func(r *esdb.RecordedEvent) { r.EventType = "OrderTeleported" }, aggregate.ErrUnknownEventType},
		{"not json data", func(r *esdb.RecordedEvent) { r.Data = []byte("nope") }, aggregate.ErrInvalidEventData},
		{"binary content", func(r *esdb.RecordedEvent) { r.ContentType = "application/octet-stream" }, nil},
		{"bad metadata", func(r *esdb.RecordedEvent) { r.UserMetadata = []byte("{") }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := recorded(good, "order-x", 3)
			tc.mutate(r)
			_, _, err := eventstore.Decode(r)
			require.ErrorIs(t, err, eventstore.ErrMalformedEvent)
			if tc.also != nil {
				require.ErrorIs(t, err, tc.also)
			}
		})
	}
	t.Run("empty metadata", func(t *testing.T) {
		r := recorded(good, "order-x", 0)
		r.UserMetadata = nil
		_, md, err := eventstore.Decode(r)
		require.NoError(t, err)
		require.Equal(t, eventstore.Metadata{}, md)
	})
	t.Run("nil", func(t *testing.T) {
		_, _, err := eventstore.Decode(nil)
		require.True(t, errors.Is(err, eventstore.ErrMalformedEvent))
	})
}

func FuzzDecode(f *testing.F) {
	f.Add("OrderPaid", []byte(`{"orderId":"x","paymentRef":"r","amount":1,"currency":"EUR"}`), []byte(`{"$correlationId":"c"}`))
	f.Add("OrderPlaced", []byte(`null`), []byte(``))
	f.Fuzz(func(t *testing.T, typ string, data, meta []byte) {
		e, _, err := eventstore.Decode(&esdb.RecordedEvent{EventType: typ, ContentType: "application/json", Data: data, UserMetadata: meta})
		if err != nil {
			if !errors.Is(err, eventstore.ErrMalformedEvent) {
				t.Fatalf("error %v is not ErrMalformedEvent", err)
			}
			return
		}
		if e.EventType() != typ {
			t.Fatalf("decoded %s as %s", typ, e.EventType())
		}
	})
}

func TestConnectRejectsBadString(t *testing.T) {
	_, err := eventstore.Connect("http://[::1")
	require.ErrorIs(t, err, eventstore.ErrInvalidConnectionString)
}

func TestAddress(t *testing.T) {
	require.Equal(t, "127.0.0.1:2113", eventstore.Address(eventstore.DefaultConnectionString))
	require.Equal(t, "db.example:1234", eventstore.Address("esdb://db.example:1234?tls=false"))
}

func TestWithLoggerReceivesClientLogs(t *testing.T) {
	var buf esdbnodetest.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	client, err := eventstore.Connect("esdb://"+addr+"?tls=false", eventstore.WithLogger(logger))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	require.ErrorIs(t, eventstore.Ping(t.Context(), client), eventstore.ErrUnavailable)
	require.Contains(t, buf.String(), "component=esdb-client")
	require.Contains(t, buf.String(), "level=WARN")
}
