package webui_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest/browsertest"
)

// TestBrowserFindOrderByID: the bare id the CLI prints finds its order; "No streams." shows
// only when nothing matched; a stream's events show their data without a click; $all can
// expand every event in one click and hide system events.
func TestBrowserFindOrderByID(t *testing.T) {
	f := newFixture(t)
	ctx := browsertest.Open(t, browsertest.Desktop, 60*time.Second)
	id := strings.TrimPrefix(f.order, "order-")

	noneShown := func() bool {
		return browsertest.Value(t, ctx, "look for No streams.", chromedp.Evaluate[bool](`document.querySelector('main').textContent.includes('No streams.')`))
	}
	for _, q := range []string{id, f.order} {
		browsertest.Run(t, ctx, "search "+q, chromedp.Navigate(f.base+"/web/streams"), chromedp.SendKeys(css(`#q`), q))
		follow(t, ctx, "/web/streams?q="+q, chromedp.Submit(css(`#q`)))
		if got := browsertest.Value(t, ctx, "read the match", chromedp.Evaluate[string](`document.querySelector('#exact') ? document.querySelector('#exact').textContent : ''`)); got != f.order {
			t.Errorf("searching %q: match %q, want %q", q, got, f.order)
		}
		if noneShown() {
			t.Errorf("searching %q: %q shown under the match", q, "No streams.")
		}
	}
	browsertest.Screenshot(t, ctx, "bare-id")
	browsertest.Run(t, ctx, "search nothing", chromedp.Navigate(f.base+"/web/streams?q=no-such-stream-"+uuid.NewString()))
	if !noneShown() {
		t.Errorf("a search that matched nothing does not say so")
	}

	// The stream page: the data is on screen without a click.
	browsertest.Run(t, ctx, "open the order", chromedp.Navigate(f.base+streamPath(f.order)))
	visible := browsertest.Value(t, ctx, "is the data visible", chromedp.Evaluate[bool](
		`[...document.querySelectorAll('details.ev .data pre')].length === 2 && [...document.querySelectorAll('details.ev .data pre')].every(e => e.checkVisibility())`))
	if !visible {
		t.Errorf("the stream page hides its events' data behind a click")
	}
	browsertest.Screenshot(t, ctx, "stream-open")

	// $all: expand all in one click; hide system events ($-types: the deletes' $metadata).
	browsertest.Run(t, ctx, "open $all", chromedp.Navigate(f.base+"/web/all"))
	types := `[...document.querySelectorAll('details.ev > summary .type')].map(e => e.textContent)`
	before := browsertest.Value(t, ctx, "read types", chromedp.Evaluate[[]string](types))
	if !hasSystem(before) {
		t.Fatalf("the fixture's $all shows no system event: %v", before)
	}
	follow(t, ctx, "/web/all?open=1", chromedp.Click(css(`#expand`)))
	if open := browsertest.Value(t, ctx, "all open", chromedp.Evaluate[bool](`[...document.querySelectorAll('details.ev')].every(d => d.open)`)); !open {
		t.Errorf("expand all left events collapsed")
	}
	follow(t, ctx, "/web/all?open=1&sys=0", chromedp.Click(css(`#hidesys`)))
	after := browsertest.Value(t, ctx, "read types", chromedp.Evaluate[[]string](types))
	if hasSystem(after) || len(after) == 0 {
		t.Errorf("with system events hidden, $all shows %v", after)
	}
	browsertest.Screenshot(t, ctx, "all-no-system")
}

func hasSystem(types []string) bool {
	for _, typ := range types {
		if strings.HasPrefix(typ, "$") {
			return true
		}
	}
	return false
}

// TestBrowserCaughtUpGroupsAreNotBehind: $all groups whose consumers acked everything show
// Behind 0, although their own and each other's checkpoint records follow their checkpoints.
func TestBrowserCaughtUpGroupsAreNotBehind(t *testing.T) {
	f := newFixture(t)
	c := f.client
	ctx := t.Context()
	settings := esdb.SubscriptionSettingsDefault()
	settings.CheckpointAfter = 100 // ms
	settings.CheckpointLowerBound = 1
	groups := []string{"projection-a", "projection-b", "mail"}
	for _, g := range groups {
		err := c.CreatePersistentSubscriptionToAll(ctx, g, esdb.PersistentAllSubscriptionOptions{
			Settings: &settings, StartFrom: esdb.Start{},
			Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"order-"}},
		})
		if err != nil {
			t.Fatalf("create %s: %v", g, err)
		}
		sub, err := c.SubscribeToPersistentSubscriptionToAll(ctx, g, esdb.SubscribeToPersistentSubscriptionOptions{})
		if err != nil {
			t.Fatalf("subscribe %s: %v", g, err)
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
				if ev.EventAppeared != nil {
					_ = sub.Ack(ev.EventAppeared.Event)
				}
			}
		}()
	}
	for i := range 5 {
		appendEvents(t, c, "order-"+uuid.NewString(), jsonEvent("OrderPlaced", fmt.Sprintf(`{"n":%d}`, i)))
	}

	bctx := browsertest.Open(t, browsertest.Desktop, 60*time.Second)
	browsertest.Run(t, bctx, "open the list", chromedp.Navigate(f.base+"/web/subscriptions"))
	// The page refreshes itself; wait until every group shows 0 behind.
	caughtUp := fmt.Sprintf(`(() => {
		const col = [...document.querySelectorAll('table.groups thead th')].findIndex(th => th.textContent.trim() === 'Behind');
		const b = [...document.querySelectorAll('table.groups tbody tr')].map(tr => tr.children[col].textContent.trim());
		return col >= 0 && b.length === %d && b.every(x => x === '0'); })()`, len(groups))
	pctx, cancel := context.WithTimeout(bctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(pctx, chromedp.Poll[bool](caughtUp, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		shown := browsertest.Value(t, bctx, "read the table", chromedp.Text(css(`table.groups`)))
		t.Fatalf("caught-up groups never all showed Behind 0: %v\n%s", err, shown)
	}
	browsertest.Screenshot(t, bctx, "caught-up")
}
