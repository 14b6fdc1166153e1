package eventstoretest

import (
	"context"
	"errors"
	"io"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// StreamTypes lists the event types of a stream as the node holds them, in revision order
// (nil: no such stream). It does not fail a test, so a Proxy condition can call it.
func StreamTypes(ctx context.Context, client *esdb.Client, stream string) ([]string, error) {
	rs, err := client.ReadStream(ctx, stream, esdb.ReadStreamOptions{}, 100000)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var types []string
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return types, nil
		}
		if e, ok := esdb.FromError(err); !ok && e.IsErrorCode(esdb.ErrorCodeResourceNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		types = append(types, ev.Event.EventType)
	}
}
