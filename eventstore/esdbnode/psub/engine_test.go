package psub_test

import (
	"net"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
	"github.com/orderstore/orders/eventstore/esdbnode/psub"
	"github.com/orderstore/orders/eventstore/esdbnode/wire"
)

// startEngine serves only the engine, over a real log, with opts (a fast tick, a clock).
func startEngine(t *testing.T, opts psub.Options) (*eventlog.Log, persistent.PersistentSubscriptionsClient) {
	t.Helper()
	log, err := eventlog.Open(t.TempDir(), eventlog.Options{})
	require.NoError(t, err)
	svc, err := psub.New(log, opts)
	require.NoError(t, err)
	require.NoError(t, svc.Start())
	gs := grpc.NewServer(grpc.ForceServerCodecV2(wire.NewCodec())) // event messages are encoded by hand
	persistent.RegisterPersistentSubscriptionsServer(gs, svc)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = gs.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
		require.NoError(t, svc.Close())
		require.NoError(t, svc.Close(), "Close is idempotent")
		require.NoError(t, log.Close())
	})
	return log, persistent.NewPersistentSubscriptionsClient(conn)
}

func TestEngineTickDrivesTimeoutsAndParking(t *testing.T) {
	log, raw := startEngine(t, psub.Options{Tick: 10 * time.Millisecond})
	s, g := "tick-stream", "tick-group"
	_, err := log.Append(t.Context(), s, eventlog.Expected{}, []eventlog.Proposed{{ID: uuid.New(), Type: "T", IsJSON: true, Data: []byte(`{}`)}})
	require.NoError(t, err)
	req := rawCreate(s, g, "RoundRobin")
	req.Options.Settings.MaxRetryCount = 2
	req.Options.Settings.MessageTimeout = &persistent.CreateReq_Settings_MessageTimeoutMs{MessageTimeoutMs: 0}
	_, err = raw.Create(t.Context(), req)
	require.NoError(t, err)

	rd := rawRead(t, raw, s, g)
	first, err := rd.Recv()
	require.NoError(t, err)
	assert.Equal(t, s+"::"+g, first.GetSubscriptionConfirmation().GetSubscriptionId())

	// Never acked: each tick expires it; retry counts 0, 1, 2, then parked.
	start := time.Now()
	for want := range int32(3) {
		resp, err := rd.Recv()
		require.NoError(t, err)
		ev := resp.GetEvent()
		require.NotNil(t, ev)
		assert.Equal(t, want, ev.GetRetryCount())
		_, err = uuid.Parse(ev.GetEvent().GetId().GetString_())
		assert.NoError(t, err, "string ids when asked for")
		assert.NotEmpty(t, ev.GetEvent().GetMetadata()["created"])
	}
	parked := "$persistentsubscription-" + s + "::" + g + "-parked"
	eventually(t, "parked", func() (bool, string) {
		recs, err := log.ReadStream(t.Context(), parked, eventlog.Forwards, 0, 10)
		return err == nil && len(recs) == 1, ""
	})
	// Three expiries need at least two full ticks: >= 2s with the default.
	assert.Less(t, time.Since(start), 1500*time.Millisecond, "the injected tick, not the 1s default, drove the timeouts")
}

func TestNewValidatesOptions(t *testing.T) {
	log, err := eventlog.Open(t.TempDir(), eventlog.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = log.Close() })
	_, err = psub.New(log, psub.Options{Tick: -time.Second})
	require.ErrorIs(t, err, psub.ErrInvalidOptions)
	svc, err := psub.New(log, psub.Options{})
	require.NoError(t, err, "zero options take the defaults")
	require.NoError(t, svc.Close())
}

// rawRead opens a Read call on group g of stream s, as a client taking string ids with a
// buffer of 10; the caller receives the confirmation first.
func rawRead(t *testing.T, raw persistent.PersistentSubscriptionsClient, s, g string) persistent.PersistentSubscriptions_ReadClient {
	t.Helper()
	rd, err := raw.Read(t.Context())
	require.NoError(t, err)
	require.NoError(t, rd.Send(&persistent.ReadReq{Content: &persistent.ReadReq_Options_{Options: &persistent.ReadReq_Options{
		StreamOption: &persistent.ReadReq_Options_StreamIdentifier{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(s)}},
		GroupName:    g, BufferSize: 10,
		UuidOption: &persistent.ReadReq_Options_UUIDOption{Content: &persistent.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
	}}}))
	return rd
}
