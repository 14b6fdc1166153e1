package psub_test

import (
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
	"github.com/orderstore/orders/eventstore/esdbnode/psub"
)

// TestFirstTickMayCheckpoint: like EventStoreDB, whose last checkpoint time starts at the
// minimum time, a freshly started group checkpoints on its first tick once enough events
// are processed, not a whole CheckPointAfter later. The clock is frozen, so only a group
// whose last checkpoint time starts at zero can ever pass the time condition.
func TestFirstTickMayCheckpoint(t *testing.T) {
	frozen := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	log, raw := startEngine(t, psub.Options{Tick: 10 * time.Millisecond, Now: func() time.Time { return frozen }})

	s, g := "ck-stream", "ck-group"
	_, err := log.Append(t.Context(), s, eventlog.Expected{}, []eventlog.Proposed{{ID: uuid.New(), Type: "T", IsJSON: true, Data: []byte(`{}`)}})
	require.NoError(t, err)
	req := rawCreate(s, g, "RoundRobin")
	req.Options.Settings.MinCheckpointCount = 1
	req.Options.Settings.CheckpointAfter = &persistent.CreateReq_Settings_CheckpointAfterMs{CheckpointAfterMs: 3_600_000}
	_, err = raw.Create(t.Context(), req)
	require.NoError(t, err)

	rd := rawRead(t, raw, s, g)
	_, err = rd.Recv() // confirmation
	require.NoError(t, err)
	resp, err := rd.Recv()
	require.NoError(t, err)
	ev := resp.GetEvent()
	require.NotNil(t, ev)
	require.NoError(t, rd.Send(&persistent.ReadReq{Content: &persistent.ReadReq_Ack_{Ack: &persistent.ReadReq_Ack{
		Ids: []*shared.UUID{ev.GetEvent().GetId()},
	}}}))

	ck := "$persistentsubscription-" + s + "::" + g + "-checkpoint"
	eventually(t, "a checkpoint on the first tick", func() (bool, string) {
		recs, err := log.ReadStream(t.Context(), ck, eventlog.Forwards, 0, 10)
		return err == nil && len(recs) == 1, ""
	})
}
