package psub_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
	"github.com/orderstore/orders/eventstore/esdbnode/wire"
)

// psStub is the PersistentSubscriptions service without storage: the
// protocol ceiling the node's delivery is measured against. What it costs is
// what the official client, gRPC, protobuf and loopback cost.
//
//   - preload(stream, n) declares a stream of n synthetic events, built once:
//     one log record each, with the fields the client requires (structured
//     id, stream identifier, revision, positions, type, JSON content type,
//     created time, a small JSON payload). Each push encodes its message with
//     the node's own hand encoder (package wire, sent by its codec), as the
//     node's delivery does, so that the comparison measures delivery, not
//     encoding. Groups of a stream share
//     them; a stream never preloaded has no events.
//   - Create accepts any group (replacing one of the same key) and starts it
//     at the stream's first event; Delete forgets it; GetInfo reports the
//     number of distinct events acked as TotalItems. Other methods are
//     Unimplemented.
//   - Read answers NotFound for an unknown group, otherwise sends the
//     confirmation "<stream>::<group>" and then pushes the group's events in
//     order, round-robin over the connected consumers that have one of their
//     buffer_size in-flight slots free, until every event has been pushed
//     once. Each ack or nack of an in-flight event frees its slot; acks are
//     decoded and counted for real (the ceiling includes the ack traffic).
//     There are no retries, timeouts or checkpoints: a nacked message is
//     dropped, and a consumer that leaves takes its in-flight messages with
//     it.
type psStub struct {
	persistent.UnimplementedPersistentSubscriptionsServer

	srv      *grpc.Server
	lis      net.Listener
	serveErr chan error
	created  time.Time // creation time of every synthetic event

	mu      sync.Mutex
	streams map[string]*stubStream
	groups  map[string]*stubGroup
}

// stubStream is a preloaded stream. Every event id has msb as its upper half
// and stubLSBTag | index as its lower half, so an ack decodes to an index
// without a lookup.
type stubStream struct {
	name   string
	msb    int64
	events []eventlog.Record // read-only once built
}

// stubLSBTag is the RFC 4122 variant (10xx) in the top bits of an id's lower
// half; the index of the event sits below.
const (
	stubLSBTag   = uint64(0x8000_0000_0000_0000)
	stubLSBIndex = uint64(0x3fff_ffff_ffff_ffff)
)

// stubGroup is one group's delivery state.
type stubGroup struct {
	key    string
	stream string
	events []eventlog.Record
	msb    int64

	mu       sync.Mutex
	next     int    // the next event to push
	finished []bool // acked or nacked
	acked    int64  // distinct events acked
	conns    []*stubConn
	rr       int // where the round-robin search starts
}

// stubConn is one Read call's share of a group. Every field is guarded by
// the group's mutex except wake.
type stubConn struct {
	size  int           // buffer_size
	free  int           // slots not in flight
	queue []*wire.Msg   // assigned, encoded, not yet sent
	wake  chan struct{} // capacity 1: queue is not empty
}

// startStub runs a psStub on 127.0.0.1:0 and returns it with an official
// client connected to it; both are closed when tb ends.
func startStub(tb testing.TB) (*psStub, *esdb.Client) {
	tb.Helper()
	s := &psStub{
		srv: grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second, // the client pings every 10 s
			PermitWithoutStream: true,
		}), grpc.ForceServerCodecV2(wire.NewCodec())),
		serveErr: make(chan error, 1),
		created:  time.Now(),
		streams:  make(map[string]*stubStream),
		groups:   make(map[string]*stubGroup),
	}
	persistent.RegisterPersistentSubscriptionsServer(s.srv, s)
	serverfeatures.RegisterServerFeaturesServer(s.srv, stubFeatures{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("stub listen: %v", err)
	}
	s.lis = lis
	go func() { s.serveErr <- s.srv.Serve(lis) }()
	tb.Cleanup(func() {
		force := time.AfterFunc(5*time.Second, s.srv.Stop)
		s.srv.GracefulStop()
		force.Stop()
		if err := <-s.serveErr; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			tb.Errorf("stub serve: %v", err)
		}
	})

	c := esdbnodetest.Dial(tb, "esdb://"+lis.Addr().String()+"?tls=false") // its cleanup runs before the server stops
	return s, c
}

// preload declares stream with n synthetic events (replacing any earlier
// declaration; groups already created keep the events they had).
func (s *psStub) preload(stream string, n int) {
	st := &stubStream{name: stream, msb: int64(rand.Uint64()&^0xf000 | 0x4000), events: make([]eventlog.Record, n)}
	for i := range n {
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], uint64(st.msb))
		binary.BigEndian.PutUint64(id[8:], stubLSBTag|uint64(i))
		st.events[i] = eventlog.Record{
			ID: id, Stream: stream, Revision: uint64(i), Position: uint64(i + 1),
			Type: "TestEvent", IsJSON: true, Created: s.created,
			Data: []byte(fmt.Sprintf(`{"n":%d}`, i)),
		}
	}
	s.mu.Lock()
	s.streams[stream] = st
	s.mu.Unlock()
}

func stubKey(stream, group string) string { return stream + "::" + group }

// Create starts a group at the first event of its stream.
func (s *psStub) Create(_ context.Context, req *persistent.CreateReq) (*persistent.CreateResp, error) {
	o := req.GetOptions()
	stream := "$all"
	switch so := o.GetStreamOption().(type) {
	case *persistent.CreateReq_Options_Stream:
		stream = string(so.Stream.GetStreamIdentifier().GetStreamName())
	case nil:
		stream = string(o.GetStreamIdentifier().GetStreamName())
	}
	g := &stubGroup{key: stubKey(stream, o.GetGroupName()), stream: stream}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[stream]; st != nil {
		g.events, g.msb = st.events, st.msb
	}
	g.finished = make([]bool, len(g.events))
	s.groups[g.key] = g
	return &persistent.CreateResp{}, nil
}

// Delete forgets a group (its connections keep what they hold).
func (s *psStub) Delete(_ context.Context, req *persistent.DeleteReq) (*persistent.DeleteResp, error) {
	o := req.GetOptions()
	stream := "$all"
	if id, ok := o.GetStreamOption().(*persistent.DeleteReq_Options_StreamIdentifier); ok {
		stream = string(id.StreamIdentifier.GetStreamName())
	}
	key := stubKey(stream, o.GetGroupName())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups[key] == nil {
		return nil, status.Error(codes.NotFound, "persistent subscription does not exist")
	}
	delete(s.groups, key)
	return &persistent.DeleteResp{}, nil
}

// GetInfo reports a group with TotalItems = distinct events acked.
func (s *psStub) GetInfo(_ context.Context, req *persistent.GetInfoReq) (*persistent.GetInfoResp, error) {
	o := req.GetOptions()
	stream := "$all"
	if id, ok := o.GetStreamOption().(*persistent.GetInfoReq_Options_StreamIdentifier); ok {
		stream = string(id.StreamIdentifier.GetStreamName())
	}
	g := s.group(stubKey(stream, o.GetGroupName()))
	if g == nil {
		return nil, status.Error(codes.NotFound, "persistent subscription does not exist")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	info := &persistent.SubscriptionInfo{
		EventSource: g.stream, GroupName: o.GetGroupName(), Status: "Live", StartFrom: "0",
		NamedConsumerStrategy: "RoundRobin", TotalItems: g.acked,
	}
	if len(g.events) > 0 {
		info.LastKnownEventPosition = strconv.Itoa(len(g.events) - 1)
	}
	return &persistent.GetInfoResp{SubscriptionInfo: info}, nil
}

func (s *psStub) group(key string) *stubGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups[key]
}

// Read connects a consumer: confirmation, then events within its in-flight
// limit; acks and nacks free slots.
func (s *psStub) Read(stream persistent.PersistentSubscriptions_ReadServer) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "the first message must carry options")
	}
	name := "$all"
	if id, ok := o.GetStreamOption().(*persistent.ReadReq_Options_StreamIdentifier); ok {
		name = string(id.StreamIdentifier.GetStreamName())
	}
	g := s.group(stubKey(name, o.GetGroupName()))
	if g == nil {
		return status.Error(codes.NotFound, "persistent subscription does not exist")
	}
	if err := stream.Send(&persistent.ReadResp{Content: &persistent.ReadResp_SubscriptionConfirmation_{
		SubscriptionConfirmation: &persistent.ReadResp_SubscriptionConfirmation{SubscriptionId: g.key},
	}}); err != nil {
		return err
	}
	size := max(1, int(o.GetBufferSize()))
	c := &stubConn{size: size, free: size, wake: make(chan struct{}, 1)}
	g.connect(c)
	defer g.disconnect(c)

	recvDone := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvDone <- err
				return
			}
			switch content := req.GetContent().(type) {
			case *persistent.ReadReq_Ack_:
				g.settle(c, content.Ack.GetIds(), true)
			case *persistent.ReadReq_Nack_:
				g.settle(c, content.Nack.GetIds(), false)
			}
		}
	}()

	var sent []*wire.Msg
	for {
		select {
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case err := <-recvDone:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-c.wake:
			sent = g.take(c, sent)
			for _, m := range sent {
				if err := stream.SendMsg(m); err != nil {
					return err
				}
			}
		}
	}
}

func (g *stubGroup) connect(c *stubConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.conns = append(g.conns, c)
	g.dispatchLocked()
}

func (g *stubGroup) disconnect(c *stubConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, cc := range g.conns {
		if cc == c {
			g.conns = append(g.conns[:i], g.conns[i+1:]...)
			break
		}
	}
	g.rr = 0
}

// settle frees c's slot for every id of an event in flight that was not
// settled before, counting acks.
func (g *stubGroup) settle(c *stubConn, ids []*shared.UUID, ack bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		st := id.GetStructured()
		lsb := uint64(st.GetLeastSignificantBits())
		if st == nil || st.GetMostSignificantBits() != g.msb || lsb&^stubLSBIndex != stubLSBTag {
			continue
		}
		i := lsb & stubLSBIndex
		if i >= uint64(g.next) || g.finished[i] {
			continue
		}
		g.finished[i] = true
		if ack {
			g.acked++
		}
		c.free = min(c.free+1, c.size)
	}
	g.dispatchLocked()
}

// dispatchLocked assigns the next events round-robin to connections with a
// free slot.
func (g *stubGroup) dispatchLocked() {
	for g.next < len(g.events) {
		n := len(g.conns)
		var c *stubConn
		for i := range n {
			if cc := g.conns[(g.rr+i)%n]; cc.free > 0 {
				c, g.rr = cc, (g.rr+i+1)%n
				break
			}
		}
		if c == nil {
			return
		}
		c.free--
		ev := &g.events[g.next]
		c.queue = append(c.queue, wire.PersistentEvent(ev, nil, ev.Position, 0, false))
		g.next++
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// take swaps c's queue for spent (a slice already sent) and returns it.
func (g *stubGroup) take(c *stubConn, spent []*wire.Msg) []*wire.Msg {
	clear(spent)
	g.mu.Lock()
	defer g.mu.Unlock()
	q := c.queue
	c.queue = spent[:0]
	return q
}

// stubFeatures answers GetSupportedMethods like a 24.10 node: every
// PersistentSubscriptions method, with features ["stream","all"].
type stubFeatures struct {
	serverfeatures.UnimplementedServerFeaturesServer
}

func (stubFeatures) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	const svc = "event_store.client.persistent_subscriptions.persistentsubscriptions"
	out := &serverfeatures.SupportedMethods{EventStoreServerVersion: "24.10.0"}
	for _, m := range []string{"create", "update", "delete", "getinfo", "list", "replayparked", "restartsubsystem", "read"} {
		out.Methods = append(out.Methods, &serverfeatures.SupportedMethod{
			ServiceName: svc, MethodName: m, Features: []string{"stream", "all"},
		})
	}
	return out, nil
}

// TestStub pins the stub behaviour the comparison relies on.
func TestStub(t *testing.T) {
	t.Run("unknown group is not found", func(t *testing.T) {
		_, c := startStub(t)
		_, err := subscribeErr(c, "nowhere", "nobody", 10)
		if got := errCode(err); got != esdb.ErrorCodeResourceNotFound {
			t.Fatalf("subscribe to a missing group: %v (code %v), want ResourceNotFound", err, got)
		}
	})
	t.Run("buffer size bounds the messages in flight", func(t *testing.T) {
		st, c := startStub(t)
		s, g := uniq("s"), uniq("g")
		st.preload(s, 5)
		createStream(t, c, s, g, esdb.Start{}, nil)
		sub := subscribe(t, c, s, g, 2)
		first, second := sub.next(t), sub.next(t)
		if first.Event.Event.EventNumber != 0 || second.Event.Event.EventNumber != 1 {
			t.Fatalf("got events %d, %d, want 0, 1", first.Event.Event.EventNumber, second.Event.Event.EventNumber)
		}
		for _, ev := range []*esdb.EventAppeared{first, second} {
			e := ev.Event.Event
			if e.StreamID != s || e.EventType != "TestEvent" || e.ContentType != "application/json" || e.CreatedDate.IsZero() || ev.RetryCount != 0 {
				t.Errorf("event %d: %+v", e.EventNumber, e)
			}
		}
		// Event 2 was not given to the full consumer: a second consumer, joining now, gets
		// it first (events are handed out in order, each to one consumer).
		other := subscribe(t, c, s, g, 1)
		if got := other.next(t).Event.Event.EventNumber; got != 2 {
			t.Fatalf("a consumer joining later got event %d first, want 2: the first consumer took more than its 2 slots", got)
		}
		sub.ack(t, first)
		if got := sub.next(t).Event.Event.EventNumber; got != 3 {
			t.Fatalf("after one ack got event %d, want 3", got)
		}
		sub.nack(t, esdb.NackActionSkip, "", second)
		if got := sub.next(t).Event.Event.EventNumber; got != 4 {
			t.Fatalf("after one nack got event %d, want 4", got)
		}
		if got := info(t, c, s, g).Stats.TotalItems; got != 1 {
			t.Errorf("TotalItems %d after one ack, want 1", got)
		}
	})
	t.Run("a second consumer gets what the first has no slot for", func(t *testing.T) {
		st, c := startStub(t)
		s, g := uniq("s"), uniq("g")
		st.preload(s, 4)
		createStream(t, c, s, g, esdb.Start{}, nil)
		a := subscribe(t, c, s, g, 1)
		a0 := a.next(t)
		b := subscribe(t, c, s, g, 1)
		b1 := b.next(t)
		a.ack(t, a0)
		a2 := a.next(t)
		b.ack(t, b1)
		b3 := b.next(t)
		got := []uint64{a0.Event.Event.EventNumber, b1.Event.Event.EventNumber, a2.Event.Event.EventNumber, b3.Event.Event.EventNumber}
		if !slices.Equal(got, []uint64{0, 1, 2, 3}) {
			t.Fatalf("a, b, a, b got events %v, want 0 1 2 3", got)
		}
	})
}
