package contract

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/eventstore/esdbnode/auth"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

// TestContractSecure runs the whole suite again against a secure embedded
// node (ORDERS_TEST_SECURE=1), in a child process of this test binary.
func TestContractSecure(t *testing.T) {
	if os.Getenv(envSecure) == "1" || os.Getenv(envExternal) != "" {
		t.Skip("this run is already the secure run, or targets an external node")
	}
	if testing.Short() {
		t.Skip("-short: the secure run of the suite is skipped")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.count=1", "-test.timeout=10m", "-test.skip=^TestSecure")
	cmd.Env = append(os.Environ(), envSecure+"=1")
	cmd.Args = append(cmd.Args, "-test.v")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the contract suite against a secure node failed: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "--- PASS: Test"); n < 20 {
		t.Fatalf("the secure run passed only %d tests:\n%s", n, out)
	}
}

// secureNode is a secure embedded node with a user "alice" (no groups).
type secureNode struct {
	srv   *esdbnode.Server
	certs esdbnodetest.Certs
}

func newSecureNode(t *testing.T) *secureNode {
	t.Helper()
	certs := esdbnodetest.NewCerts(t)
	srv := esdbnodetest.StartSecure(t, certs)
	require.NoError(t, srv.Users().Create(t.Context(), auth.User{LoginName: "alice", FullName: "Alice"}, "alice-pw"))
	return &secureNode{srv: srv, certs: certs}
}

func (n *secureNode) as(t *testing.T, user, password string) *esdb.Client {
	return dial(t, esdbnodetest.SecureURL(n.srv, n.certs, user, password))
}

func appendOne(ctx context.Context, c *esdb.Client, stream string) error {
	_, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, jsonEvent("E", `{}`))
	return err
}

func readOne(ctx context.Context, c *esdb.Client, stream string) error {
	rs, err := c.ReadStream(ctx, stream, esdb.ReadStreamOptions{}, 1)
	if err != nil {
		return err
	}
	defer rs.Close()
	_, err = rs.Recv()
	return err
}

func readAllOne(ctx context.Context, c *esdb.Client) error {
	rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{}, 1)
	if err != nil {
		return err
	}
	defer rs.Close()
	_, err = rs.Recv()
	return err
}

func TestSecureCredentials(t *testing.T) {
	n := newSecureNode(t)
	ctx := opCtx(t)
	t.Run("admin:changeit", func(t *testing.T) {
		c := n.as(t, "admin", "changeit")
		require.NoError(t, appendOne(ctx, c, "cred-admin"))
		require.NoError(t, readAllOne(ctx, c))
	})
	t.Run("no credentials: access denied", func(t *testing.T) {
		c := n.as(t, "", "")
		requireCode(t, appendOne(ctx, c, "cred-none"), esdb.ErrorCodeAccessDenied)
		requireCode(t, readOne(ctx, c, "cred-admin"), esdb.ErrorCodeAccessDenied)
		v, err := c.GetServerVersion() // discovery needs no credentials
		require.NoError(t, err)
		require.Equal(t, 24, v.Major)
	})
	t.Run("wrong password: unauthenticated", func(t *testing.T) {
		c := n.as(t, "admin", "wrong")
		requireCode(t, appendOne(ctx, c, "cred-wrong"), esdb.ErrorCodeUnauthenticated)
		requireCode(t, readOne(ctx, c, "cred-admin"), esdb.ErrorCodeUnauthenticated)
	})
	t.Run("refused appends of many events report the status", func(t *testing.T) {
		// The node reads the whole refused append before answering, so the
		// client, which sends every event before reading, gets the status.
		evs := events(200, "E")
		_, err := n.as(t, "", "").AppendToStream(ctx, "cred-many", esdb.AppendToStreamOptions{}, evs...)
		requireCode(t, err, esdb.ErrorCodeAccessDenied)
		_, err = n.as(t, "admin", "wrong").AppendToStream(ctx, "cred-many", esdb.AppendToStreamOptions{}, evs...)
		requireCode(t, err, esdb.ErrorCodeUnauthenticated)
		_, err = n.as(t, "alice", "alice-pw").AppendToStream(ctx, "$cred-many", esdb.AppendToStreamOptions{}, evs...)
		requireCode(t, err, esdb.ErrorCodeAccessDenied)
	})
	t.Run("unknown user: unauthenticated", func(t *testing.T) {
		requireCode(t, appendOne(ctx, n.as(t, "mallory", "x"), "cred-unknown"), esdb.ErrorCodeUnauthenticated)
	})
	t.Run("per-call credentials override the connection's", func(t *testing.T) {
		c := n.as(t, "admin", "wrong")
		_, err := c.AppendToStream(ctx, "cred-override", esdb.AppendToStreamOptions{
			Authenticated: &esdb.Credentials{Login: "alice", Password: "alice-pw"},
		}, jsonEvent("E", `{}`))
		require.NoError(t, err)
	})
	t.Run("tlsVerifyCert=false", func(t *testing.T) {
		c := dial(t, "esdb://admin:changeit@"+n.srv.Addr()+"?tls=true&tlsVerifyCert=false")
		require.NoError(t, appendOne(ctx, c, "cred-noverify"))
	})
	t.Run("a client trusting another CA is refused", func(t *testing.T) {
		other := esdbnodetest.NewCerts(t)
		c := dial(t, esdbnodetest.SecureURL(n.srv, other, "admin", "changeit"))
		err := appendOne(ctx, c, "cred-other-ca")
		require.Error(t, err)
		require.Contains(t, err.Error(), "certificate signed by unknown authority")
	})
}

func TestSecureDefaultAccess(t *testing.T) {
	n := newSecureNode(t)
	ctx := opCtx(t)
	alice := n.as(t, "alice", "alice-pw")
	admin := n.as(t, "admin", "changeit")
	ops := n.as(t, "ops", "changeit")

	require.NoError(t, appendOne(ctx, alice, "orders-1"), "an ordinary stream, any user")
	require.NoError(t, readOne(ctx, alice, "orders-1"))
	requireCode(t, readAllOne(ctx, alice), esdb.ErrorCodeAccessDenied)
	requireCode(t, appendOne(ctx, alice, "$system-thing"), esdb.ErrorCodeAccessDenied)
	requireCode(t, readOne(ctx, alice, "$users"), esdb.ErrorCodeAccessDenied)
	requireCode(t, readOne(ctx, alice, "$user-admin"), esdb.ErrorCodeAccessDenied)
	_, err := alice.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{})
	if err == nil {
		t.Fatal("a non-admin subscribed to $all")
	}
	requireCode(t, err, esdb.ErrorCodeAccessDenied)
	require.NoError(t, readOne(ctx, admin, "$user-admin"), "admins see the user streams")
	require.NoError(t, appendOne(ctx, admin, "$system-thing"))

	t.Run("persistent-subscription administration needs admin or ops", func(t *testing.T) {
		group := "g"
		stream := "orders-1"
		requireCode(t, alice.CreatePersistentSubscription(ctx, stream, group, esdb.PersistentStreamSubscriptionOptions{}), esdb.ErrorCodeAccessDenied)
		require.NoError(t, ops.CreatePersistentSubscription(ctx, stream, group, esdb.PersistentStreamSubscriptionOptions{}))
		requireCode(t, alice.UpdatePersistentSubscription(ctx, stream, group, esdb.PersistentStreamSubscriptionOptions{}), esdb.ErrorCodeAccessDenied)
		require.NoError(t, admin.UpdatePersistentSubscription(ctx, stream, group, esdb.PersistentStreamSubscriptionOptions{}))
		_, err := alice.GetPersistentSubscriptionInfo(ctx, stream, group, esdb.GetPersistentSubscriptionOptions{})
		require.NoError(t, err, "statistics: any authenticated user")
		requireCode(t, alice.DeletePersistentSubscription(ctx, stream, group, esdb.DeletePersistentSubscriptionOptions{}), esdb.ErrorCodeAccessDenied)
		require.NoError(t, ops.DeletePersistentSubscription(ctx, stream, group, esdb.DeletePersistentSubscriptionOptions{}))
	})
	t.Run("consuming needs read access to the group's stream", func(t *testing.T) {
		require.NoError(t, admin.CreatePersistentSubscriptionToAll(ctx, "gall", esdb.PersistentAllSubscriptionOptions{}))
		sub, err := alice.SubscribeToPersistentSubscriptionToAll(ctx, "gall", esdb.SubscribeToPersistentSubscriptionOptions{})
		if err == nil {
			_ = sub.Close()
			t.Fatal("a non-admin consumed a $all group")
		}
		requireCode(t, err, esdb.ErrorCodeAccessDenied)
		sub, err = admin.SubscribeToPersistentSubscriptionToAll(ctx, "gall", esdb.SubscribeToPersistentSubscriptionOptions{})
		require.NoError(t, err)
		_ = sub.Close()
	})
}

func TestSecureStreamACL(t *testing.T) {
	n := newSecureNode(t)
	ctx := opCtx(t)
	require.NoError(t, n.srv.Users().Create(ctx, auth.User{LoginName: "bob"}, "bob-pw"))
	alice := n.as(t, "alice", "alice-pw")
	bob := n.as(t, "bob", "bob-pw")

	const stream = "acl-orders"
	require.NoError(t, appendOne(ctx, alice, stream))
	var md esdb.StreamMetadata
	md.SetAcl(esdb.Acl{})
	acl := esdb.Acl{}
	acl.AddReadRoles("alice")
	acl.AddWriteRoles("alice")
	acl.AddDeleteRoles("alice")
	acl.AddMetaReadRoles("alice")
	acl.AddMetaWriteRoles("alice")
	md.SetAcl(acl)
	_, err := alice.SetStreamMetadata(ctx, stream, esdb.AppendToStreamOptions{}, md)
	require.NoError(t, err)

	require.NoError(t, readOne(ctx, alice, stream))
	require.NoError(t, appendOne(ctx, alice, stream))
	requireCode(t, readOne(ctx, bob, stream), esdb.ErrorCodeAccessDenied)
	requireCode(t, appendOne(ctx, bob, stream), esdb.ErrorCodeAccessDenied)
	_, err = bob.DeleteStream(ctx, stream, esdb.DeleteStreamOptions{})
	requireCode(t, err, esdb.ErrorCodeAccessDenied)
	_, err = bob.GetStreamMetadata(ctx, stream, esdb.ReadStreamOptions{})
	requireCode(t, err, esdb.ErrorCodeAccessDenied)
	_, err = bob.SetStreamMetadata(ctx, stream, esdb.AppendToStreamOptions{}, esdb.StreamMetadata{})
	requireCode(t, err, esdb.ErrorCodeAccessDenied)

	// Nothing bob tried was written: alice still reads two events.
	evs, err := readStream(t, alice, stream, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	_, err = alice.DeleteStream(ctx, stream, esdb.DeleteStreamOptions{})
	require.NoError(t, err)
}

func TestSecureUserLifecycle(t *testing.T) {
	n := newSecureNode(t)
	ctx := opCtx(t)
	users := n.srv.Users()
	require.NoError(t, users.Create(ctx, auth.User{LoginName: "carol"}, "pw1"))
	carol := n.as(t, "carol", "pw1")
	require.NoError(t, appendOne(ctx, carol, "carol-1"))
	require.NoError(t, users.SetDisabled(ctx, "carol", true))
	requireCode(t, appendOne(ctx, carol, "carol-1"), esdb.ErrorCodeUnauthenticated)
	require.NoError(t, users.SetDisabled(ctx, "carol", false))
	require.NoError(t, appendOne(ctx, carol, "carol-1"))
	require.NoError(t, users.SetPassword(ctx, "carol", "pw2"))
	requireCode(t, appendOne(ctx, carol, "carol-1"), esdb.ErrorCodeUnauthenticated)
	require.NoError(t, appendOne(ctx, n.as(t, "carol", "pw2"), "carol-1"))
	require.NoError(t, users.Delete(ctx, "carol"))
	requireCode(t, appendOne(ctx, n.as(t, "carol", "pw2"), "carol-1"), esdb.ErrorCodeUnauthenticated)
	_, err := users.Get(ctx, "carol")
	require.True(t, errors.Is(err, auth.ErrUserNotFound), "%v", err)
}
