package subscribers

import "github.com/EventStore/EventStore-Client-Go/v4/esdb"

// ClientSettings exposes Settings.client to the tests, which create and update groups with
// the official client directly.
func ClientSettings(s Settings) esdb.PersistentSubscriptionSettings { return s.client() }
