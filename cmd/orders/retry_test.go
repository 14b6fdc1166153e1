package main

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"github.com/orderstore/orders/eventstore/eventstoretest"
)

// lostReplyNode is a node behind a proxy that can lose the answer of the next append.
type lostReplyNode struct {
	node
	proxy *eventstoretest.Proxy
}

func startLostReplyNode(t *testing.T) lostReplyNode {
	srv := esdbnodetest.Start(t)
	return lostReplyNode{
		node:  node{url: srv.ConnectionString(), client: esdbnodetest.Client(t, srv)},
		proxy: eventstoretest.NewProxy(t, srv.Addr()),
	}
}

// loseNextReply arms the proxy to cut the connection (silent: drop the replies) as soon as
// the order's stream has grown, that is after the node recorded the append and before its
// answer reaches the client.
func (n lostReplyNode) loseNextReply(t *testing.T, id string, silent bool) {
	ctx := t.Context()
	before, err := eventstoretest.StreamTypes(ctx, n.client, eventstore.StreamName(id))
	require.NoError(t, err)
	grew := func() bool {
		now, err := eventstoretest.StreamTypes(ctx, n.client, eventstore.StreamName(id))
		return err == nil && len(now) > len(before)
	}
	if silent {
		n.proxy.DropRepliesWhen(grew)
		return
	}
	n.proxy.CutRepliesWhen(grew)
}

// TestRetryAfterLostReply loses the answer of each order command's append (the node wrote
// it), through the built binary: the command exits 3 and says how to find out; run again it
// exits 0 and says it was already recorded; run with other arguments it fails as a conflict;
// and the node holds every event exactly once.
func TestRetryAfterLostReply(t *testing.T) {
	n := startLostReplyNode(t)
	via := n.proxy.ConnectionString()
	shipped, cancelled := uuid.NewString(), uuid.NewString()
	placeArgs := func(id string) []string {
		return []string{"place", "--id", id, "--customer", "ada@example.com", "--item", "BOOK-1:2:1250", "--item", "PEN:1:300"}
	}
	steps := []struct {
		name     string
		id       string
		args     []string
		silent   bool     // drop the reply instead of cutting the connection
		want     []string // the stream afterwards
		conflict []string // the same command with other arguments
		phrase   string   // of the conflict's message
	}{
		{"place", shipped, placeArgs(shipped), false, []string{aggregate.TypeOrderPlaced},
			[]string{"place", "--id", shipped, "--customer", "bob@example.com", "--item", "BOOK-1:2:1250"}, "order already placed"},
		{"pay", shipped, []string{"pay", shipped}, false, []string{aggregate.TypeOrderPlaced, aggregate.TypeOrderPaid},
			[]string{"pay", shipped, "--payment-ref", "another"}, "already paid"},
		{"ship, reply dropped until the time limit", shipped, []string{"--timeout", "2s", "ship", shipped}, true,
			[]string{aggregate.TypeOrderPlaced, aggregate.TypeOrderPaid, aggregate.TypeOrderShipped}, nil, ""},
		{"place another", cancelled, placeArgs(cancelled), false, []string{aggregate.TypeOrderPlaced}, nil, ""},
		{"cancel", cancelled, []string{"cancel", cancelled, "--reason", "too late"}, false,
			[]string{aggregate.TypeOrderPlaced, aggregate.TypeOrderCancelled},
			[]string{"cancel", cancelled, "--reason", "other"}, "already cancelled"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			n.loseNextReply(t, st.id, st.silent)
			r := cli(t, append([]string{"--esdb", via}, st.args...)...)
			require.Equal(t, exitOutcomeUnknown, r.code, "stdout %q stderr %q", r.stdout, r.stderr)
			require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
			require.Contains(t, r.stderr, "outcome unknown")
			require.Contains(t, r.stderr, "orders show "+st.id)
			require.Empty(t, r.stdout)
			require.Equal(t, st.want, n.types(t, eventstore.StreamName(st.id)), "the node recorded it, once")

			// Run again, human output, then --json: recorded already, nothing appended.
			r = cli(t, append([]string{"--esdb", via}, st.args...)...)
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout+r.stderr, "already recorded, nothing appended")
			var out struct {
				ID              string `json:"id"`
				Appended        int    `json:"appended"`
				AlreadyRecorded bool   `json:"alreadyRecorded"`
				Revision        int64  `json:"revision"`
			}
			ok(t, &out, append([]string{"--esdb", via}, st.args...)...)
			require.Equal(t, st.id, out.ID)
			require.True(t, out.AlreadyRecorded)
			require.Zero(t, out.Appended)
			require.EqualValues(t, len(st.want)-1, out.Revision)
			require.Equal(t, st.want, n.types(t, eventstore.StreamName(st.id)))

			if st.conflict != nil {
				r = cli(t, append([]string{"--esdb", via}, st.conflict...)...)
				require.Equal(t, 1, r.code, "stdout %q stderr %q", r.stdout, r.stderr)
				require.Contains(t, r.stderr, st.phrase)
				require.Equal(t, st.want, n.types(t, eventstore.StreamName(st.id)))
			}
		})
	}
	require.Equal(t, len(steps), n.proxy.Fired(), "every step lost a reply")
}

// TestPlaceWithoutIDAfterLostReply: place chose a fresh id and its answer was lost. The
// message names the id and the exact command that repeats it; running that places nothing
// more.
func TestPlaceWithoutIDAfterLostReply(t *testing.T) {
	n := startLostReplyNode(t)
	headBefore := n.head(t)
	n.proxy.CutRepliesWhen(func() bool {
		rs, err := n.client.ReadAll(t.Context(), esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
		if err != nil {
			return false
		}
		defer rs.Close()
		ev, err := rs.Recv()
		return err == nil && ev.OriginalEvent().Position.Commit != headBefore
	})
	r := cli(t, "--esdb", n.proxy.ConnectionString(), "place", "--customer", "o'hara@example.com", "--item", "MUG:1:900", "--currency", "GBP")
	require.Equal(t, exitOutcomeUnknown, r.code, r.stderr)
	m := regexp.MustCompile(`(orders place --id (\S+) .*--currency GBP)`).FindStringSubmatch(r.stderr)
	require.NotNil(t, m, "no retry command in %q", r.stderr)
	id := m[2]
	require.Equal(t, []string{aggregate.TypeOrderPlaced}, n.types(t, eventstore.StreamName(id)))

	// Run the command the message gave, through a shell, as a user would.
	sh := exec.CommandContext(t.Context(), "sh", "-c", binary+" --esdb '"+n.proxy.ConnectionString()+"' --json "+strings.TrimPrefix(m[1], "orders "))
	sh.Env = cleanEnv()
	out, err := sh.Output()
	require.NoError(t, err)
	var res struct {
		ID              string `json:"id"`
		AlreadyRecorded bool   `json:"alreadyRecorded"`
		Currency        string `json:"currency"`
	}
	require.NoError(t, json.Unmarshal(out, &res))
	require.Equal(t, id, res.ID)
	require.True(t, res.AlreadyRecorded)
	require.Equal(t, "GBP", res.Currency)
	require.Equal(t, []string{aggregate.TypeOrderPlaced}, n.types(t, eventstore.StreamName(id)))
}

// TestNotAppendedWhenRefused: when the node refuses the connection nothing is sent: exit 1,
// and the message says nothing was appended.
func TestNotAppendedWhenRefused(t *testing.T) {
	n := startLostReplyNode(t)
	p := place(t, n.url)
	n.proxy.Refuse()
	for _, args := range [][]string{
		{"pay", p.ID},
		{"place", "--id", uuid.NewString(), "--customer", "a@example.com", "--item", "B:1:100"},
	} {
		r := cli(t, append([]string{"--esdb", n.proxy.ConnectionString()}, args...)...)
		require.Equal(t, 1, r.code, r.stderr)
		require.Contains(t, r.stderr, "cannot reach EventStoreDB")
		require.Contains(t, r.stderr, "nothing appended")
	}
	require.Equal(t, []string{aggregate.TypeOrderPlaced}, n.types(t, eventstore.StreamName(p.ID)))
}
