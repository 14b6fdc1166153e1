package esdbnode

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/google/uuid"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

const (
	usersStream   = "$users"
	userEventType = "$User"
)

// seedUsers writes the $users stream a fresh EventStoreDB has ("ops" and
// "admin" $User events), only when the stream is absent: tools read it to
// check that a node is up.
func seedUsers(ctx context.Context, log *eventlog.Log) error {
	st, err := log.Stream(ctx, usersStream)
	if err != nil {
		return err
	}
	if st.LastRevision >= 0 || st.Tombstoned {
		return nil
	}
	type user struct {
		LoginName string   `json:"loginName"`
		FullName  string   `json:"fullName"`
		Groups    []string `json:"groups"`
	}
	users := []user{
		{LoginName: "ops", FullName: "Ops", Groups: []string{"$ops"}},
		{LoginName: "admin", FullName: "Event Store Administrator", Groups: []string{"$admins"}},
	}
	events := make([]eventlog.Proposed, 0, len(users))
	for _, u := range users {
		data, err := json.Marshal(u)
		if err != nil {
			return err
		}
		events = append(events, eventlog.Proposed{ID: uuid.New(), Type: userEventType, IsJSON: true, Data: data})
	}
	_, err = log.Append(ctx, usersStream, eventlog.Expected{Kind: eventlog.ExpectNoStream}, events)
	var wev *eventlog.WrongExpectedVersionError
	if errors.As(err, &wev) {
		return nil // written meanwhile
	}
	return err
}
