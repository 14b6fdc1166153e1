package webui_test

import (
	"context"

	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

// Payloads of the fixture's untrusted events.
const (
	xssData = `{"note":"<script>window.__xss=1</script>","html":"<img src=x onerror=\"window.__xss=2\">"}`
	xssType = `<img src=x onerror="window.__xss=3">`
)

// brokenUTF8 is event data that is neither JSON nor valid UTF-8, with markup in it.
var brokenUTF8 = []byte("\xff\xfe<script>window.__xss=4</script>\x00\x01 caf\xc3")

// fixture is a real node with every kind of stream the UI must show.
type fixture struct {
	srv     *esdbnode.Server
	client  *esdb.Client
	base    string // http://host:port
	order   string // an order's stream
	links   string // a stream whose event 0 links to order's event 0
	xss     string // JSON with markup, and a type with markup
	binary  string // broken UTF-8
	soft    string // soft-deleted
	hard    string // tombstoned
	weird   string // a name with "/", "$" and "::"
	parking string // the persistent group's stream
	group   string
	parked  int // messages parked in group

	acking atomic.Bool // the consumer acks (true) or parks (false)
}

func appendEvents(t *testing.T, c *esdb.Client, stream string, events ...esdb.EventData) {
	t.Helper()
	if _, err := c.AppendToStream(t.Context(), stream, esdb.AppendToStreamOptions{}, events...); err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
}

func jsonEvent(typ, data string) esdb.EventData {
	return esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeJson, Data: []byte(data),
		Metadata: []byte(`{"$correlationId":"c-1","$causationId":"c-0"}`)}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := esdbnodetest.Start(t)
	f := &fixture{
		srv: srv, client: esdbnodetest.Client(t, srv), base: "http://" + srv.Addr(),
		order:   "order-" + uuid.NewString(),
		links:   "links-1",
		xss:     "xss-1",
		binary:  "binary-1",
		soft:    "gone-soft",
		hard:    "gone-hard",
		weird:   "tenant/a$b::c",
		parking: "parking-1",
		group:   "g/1",
		parked:  3,
	}
	c := f.client
	appendEvents(t, c, f.order,
		jsonEvent("OrderPlaced", `{"orderId":"o-1","customerId":"c-9","lines":[{"sku":"SKU-1","qty":2,"priceMinor":1250}]}`),
		jsonEvent("OrderPaid", `{"orderId":"o-1","paymentRef":"pay-77","amountMinor":2500}`),
	)
	appendEvents(t, c, f.links, esdb.EventData{EventID: uuid.New(), EventType: "$>", ContentType: esdb.ContentTypeBinary,
		Data: []byte("0@" + f.order)})
	appendEvents(t, c, f.xss, jsonEvent(xssType, xssData))
	appendEvents(t, c, f.binary, esdb.EventData{EventID: uuid.New(), EventType: "Blob", ContentType: esdb.ContentTypeBinary,
		Data: brokenUTF8, Metadata: []byte("\xffmeta")})
	appendEvents(t, c, f.soft, jsonEvent("Thing", `{"n":1}`))
	if _, err := c.DeleteStream(t.Context(), f.soft, esdb.DeleteStreamOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	appendEvents(t, c, f.hard, jsonEvent("Thing", `{"n":2}`))
	if _, err := c.TombstoneStream(t.Context(), f.hard, esdb.TombstoneStreamOptions{}); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	appendEvents(t, c, f.weird, jsonEvent("Weird", `{"ok":true}`))
	return f
}

// park creates the group, connects a consumer that parks every event until
// f.acking is set (then it acks), and waits until f.parked are parked. The
// consumer runs until the test ends.
func (f *fixture) park(t *testing.T) {
	t.Helper()
	c := f.client
	ctx := t.Context()
	for i := range f.parked {
		appendEvents(t, c, f.parking, jsonEvent("PaymentFailed", fmt.Sprintf(`{"attempt":%d}`, i)))
	}
	if err := c.CreatePersistentSubscription(ctx, f.parking, f.group, esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Start{}}); err != nil {
		t.Fatalf("create group: %v", err)
	}
	sub, err := c.SubscribeToPersistentSubscription(ctx, f.parking, f.group, esdb.SubscribeToPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = sub.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			ev := sub.Recv()
			if ev.SubscriptionDropped != nil {
				return
			}
			if ev.EventAppeared == nil {
				continue
			}
			if f.acking.Load() {
				_ = sub.Ack(ev.EventAppeared.Event)
			} else {
				_ = sub.Nack("payment provider said <b>no</b>", esdb.NackActionPark, ev.EventAppeared.Event)
			}
		}
	}()
	waitFor(t, 15*time.Second, fmt.Sprintf("%d parked messages", f.parked), func() (bool, error) {
		info, err := c.GetPersistentSubscriptionInfo(ctx, f.parking, f.group, esdb.GetPersistentSubscriptionOptions{})
		if err != nil {
			return false, err
		}
		return info.Stats != nil && info.Stats.ParkedMessagesCount == int64(f.parked), nil
	})
	f.acking.Store(true)
}

// waitFor polls cond until it holds or the deadline passes (there is no
// event to wait on across the gRPC boundary).
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
		case <-tick.C:
		}
	}
}

// noRedirect is an HTTP client that shows redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}
