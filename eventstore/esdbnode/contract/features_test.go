package contract

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	shared "github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestServerFeatures pins the ServerFeatures answer (docs/protocol.md, section
// 1, "Features") as the client sees it, and as it is on the wire.
func TestServerFeatures(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)

	t.Run("version as the client parses it", func(t *testing.T) {
		v, err := tg.client.GetServerVersion()
		require.NoError(t, err)
		if tg.external {
			require.GreaterOrEqual(t, v.Major, 20, "a gRPC node is at least 20.x")
			return
		}
		require.Equal(t, esdb.ServerVersion{Major: 24, Minor: 10, Patch: 0}, *v)
	})

	t.Run("supported methods on the wire", func(t *testing.T) {
		cfg, err := esdb.ParseConnectionString(tg.connStr)
		require.NoError(t, err)
		if !cfg.DisableTLS || len(cfg.GossipSeeds) > 0 {
			t.Skip("the raw wire check needs a single insecure node")
		}
		conn, err := grpc.NewClient(cfg.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		resp, err := serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(ctx, &shared.Empty{})
		require.NoError(t, err)

		features := map[string][]string{}
		for _, m := range resp.GetMethods() {
			features[m.GetServiceName()+"/"+m.GetMethodName()] = m.GetFeatures()
		}
		const streams, ps = "event_store.client.streams.streams/", "event_store.client.persistent_subscriptions.persistentsubscriptions/"
		for _, m := range []string{"read", "append", "delete", "tombstone"} {
			require.Contains(t, features, streams+m, "method names are lower-cased")
		}
		require.Contains(t, features, ps+"create")
		require.True(t, slices.Contains(features[ps+"create"], "all"), "persistent subscriptions to $all need feature \"all\" on create: %v", features[ps+"create"])
		mgmt := 0
		for _, m := range []string{"getinfo", "list", "replayparked", "restartsubsystem"} {
			if _, ok := features[ps+m]; ok {
				mgmt++
			}
		}
		require.Positive(t, mgmt, "at least one management method keeps the client off its HTTP fallback")
	})

	t.Run("persistent subscriptions to $all are enabled in the client", func(t *testing.T) {
		group := "contract-features-" + uuid.NewString()
		err := tg.client.CreatePersistentSubscriptionToAll(opCtx(t), group, esdb.PersistentAllSubscriptionOptions{})
		require.NoError(t, err, "ErrorCodeUnsupportedFeature here means the create/all feature was not parsed")
		require.NoError(t, tg.client.DeletePersistentSubscriptionToAll(opCtx(t), group, esdb.DeletePersistentSubscriptionOptions{}))
	})
}
