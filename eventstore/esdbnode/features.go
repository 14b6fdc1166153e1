package esdbnode

import (
	"context"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"

	"github.com/orderstore/orders/eventstore/esdbnode/psub"
)

const (
	streamsServiceName    = "event_store.client.streams.streams"
	persistentServiceName = "event_store.client.persistent_subscriptions.persistentsubscriptions"
)

// featuresService answers ServerFeatures.GetSupportedMethods like
// EventStoreDB: lower-cased service and method names of what is implemented.
type featuresService struct {
	serverfeatures.UnimplementedServerFeaturesServer
}

func (featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	return supportedMethods(), nil
}

func supportedMethods() *serverfeatures.SupportedMethods {
	ms := []*serverfeatures.SupportedMethod{
		{MethodName: "read", ServiceName: streamsServiceName, Features: []string{"position", "events"}},
		{MethodName: "append", ServiceName: streamsServiceName},
		{MethodName: "delete", ServiceName: streamsServiceName},
		{MethodName: "tombstone", ServiceName: streamsServiceName},
	}
	for _, m := range psub.SupportedMethods() {
		ms = append(ms, &serverfeatures.SupportedMethod{
			MethodName:  m,
			ServiceName: persistentServiceName,
			Features:    []string{"stream", "all"},
		})
	}
	return &serverfeatures.SupportedMethods{Methods: ms, EventStoreServerVersion: Version}
}
