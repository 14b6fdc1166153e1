package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// stubPoolSize is the number of distinct synthetic streams (and event ids)
// the Stub cycles through when it answers a $all read.
const stubPoolSize = 256

// stubCloseGrace is how long Close lets in-flight calls finish before it
// cuts them.
const stubCloseGrace = 5 * time.Second

// Stub is a Streams server without storage: the protocol ceiling the node is
// measured against. It registers ServerFeatures (version 24.10.0, methods
// streams read and append) and Streams:
//
//   - Append reads the options and every proposed message, then answers
//     success with the stream's revision (a per-stream counter) and a
//     log position (a global counter), both advanced by the number of
//     messages consumed. It never checks the expected revision. A
//     NewSyncingStub first writes and syncs a block of a file.
//   - Read answers a forwards $all read from Start or a position p with
//     `count` synthetic events at positions p, p+1, … (Start is 1), each with
//     the fields the official client requires (stream identifier; type,
//     content-type and created metadata). A backwards read or a read from End
//     returns nothing; a stream read answers stream_not_found; subscriptions
//     are Unimplemented.
//
// It is shaped like httptest.Server: NewStub, Start, ConnectionString, Close.
type Stub struct {
	srv      *grpc.Server
	streams  *stubStreams
	mu       sync.Mutex
	lis      net.Listener
	started  bool
	closed   bool
	serveErr chan error
	syncFile *syncFile  // NewSyncingStub's
	syncer   *groupSync // NewSyncingStub's
}

// NewSyncingStub returns a Stub (not listening yet) that makes each append
// durable the cheapest way it can and does nothing else a store does:
// before it answers, its handler writes as many bytes as the append's
// proposed messages took on the wire (whole 4 KiB pages of a preallocated
// file in dir) and waits for an fdatasync that began after its write, with
// group commit like the node's log: the handler that finds no sync running
// runs one itself, covering every write so far; concurrent appends share
// it. Its figures are the append ceilings measured through the whole stack
// (the protocol, the writes and the syncs, and whatever the machine charges
// for waking the threads a sync leaves idle): a lone writer pays one write
// and one sync on its own goroutine. Close removes the file.
func NewSyncingStub(dir string) (*Stub, error) {
	f, err := newSyncFile(dir, syncingStubSlots)
	if err != nil {
		return nil, err
	}
	s := NewStub()
	s.syncFile = f
	s.syncer = newGroupSync(f)
	s.streams.durable = s.syncer.writeSync
	return s, nil
}

// syncingStubSlots is the size of NewSyncingStub's file in SyncSize pages
// (16 MiB), written round and round.
const syncingStubSlots = 4096

// NewStub returns a Stub that is not listening yet.
func NewStub() *Stub {
	srv := grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second, // the client pings every 10 s
			PermitWithoutStream: true,
		}),
	)
	st := newStubStreams(time.Now())
	streams.RegisterStreamsServer(srv, st)
	serverfeatures.RegisterServerFeaturesServer(srv, stubFeatures{})
	return &Stub{srv: srv, streams: st, serveErr: make(chan error, 1)}
}

// Start listens on 127.0.0.1:0 and serves in the background. The client may
// connect as soon as Start returns.
func (s *Stub) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrStubClosed
	case s.started:
		return ErrStubStarted
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bench: stub listen: %w", err)
	}
	s.lis = lis
	s.started = true
	go func() { s.serveErr <- s.srv.Serve(lis) }()
	return nil
}

// Addr is the host:port the stub listens on ("" before Start).
func (s *Stub) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		return ""
	}
	return s.lis.Addr().String()
}

// ConnectionString is the esdb:// URL for the official client.
func (s *Stub) ConnectionString() string {
	return "esdb://" + s.Addr() + "?tls=false"
}

// Close stops the server, letting in-flight calls finish for a few seconds
// before cutting them, and waits until it has stopped. It is idempotent.
func (s *Stub) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	if s.syncFile != nil {
		defer s.syncFile.close()
	}
	if !started {
		s.srv.Stop()
		return nil
	}
	force := time.AfterFunc(stubCloseGrace, s.srv.Stop)
	s.srv.GracefulStop()
	force.Stop()
	if err := <-s.serveErr; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("bench: stub serve: %w", err)
	}
	return nil
}

// stubFeatures answers GetSupportedMethods like a 24.10 node that has only
// the Streams read and append methods.
type stubFeatures struct {
	serverfeatures.UnimplementedServerFeaturesServer
}

func (stubFeatures) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	const svc = "event_store.client.streams.streams"
	return &serverfeatures.SupportedMethods{
		EventStoreServerVersion: "24.10.0",
		Methods: []*serverfeatures.SupportedMethod{
			{ServiceName: svc, MethodName: "read", Features: []string{"position", "events"}},
			{ServiceName: svc, MethodName: "append"},
		},
	}, nil
}

// stubEvent is the shared, read-only part of one synthetic event.
type stubEvent struct {
	stream     *shared.StreamIdentifier
	structured *shared.UUID
	str        *shared.UUID
}

type stubStreams struct {
	streams.UnimplementedStreamsServer

	pool     [stubPoolSize]stubEvent
	metadata map[string]string // read-only after construction
	data     []byte

	// durable, if set, runs before each append is answered with the
	// size of its proposed messages on the wire (NewSyncingStub).
	durable func(size int) error

	mu   sync.Mutex
	revs map[string]uint64 // events appended per stream
	pos  uint64            // last position handed out
}

func newStubStreams(now time.Time) *stubStreams {
	s := &stubStreams{
		metadata: map[string]string{
			"type":         typeOrderPlaced,
			"content-type": "application/json",
			"created":      strconv.FormatInt(now.UTC().UnixNano()/100, 10), // .NET ticks since the Unix epoch
		},
		revs: make(map[string]uint64),
	}
	for i := range s.pool {
		id := uuid.New()
		most, least := esdb.UUIDAsInt64(id)
		s.pool[i] = stubEvent{
			stream: &shared.StreamIdentifier{StreamName: []byte(streamPrefix + id.String())},
			structured: &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
				MostSignificantBits: most, LeastSignificantBits: least,
			}}},
			str: &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}},
		}
	}
	s.data = orderPayload(nil, s.pool[0].str.GetString_(), 0)
	return s
}

// Append consumes the options and every proposed message and answers success.
func (s *stubStreams) Append(srv streams.Streams_AppendServer) error {
	var req streams.AppendReq
	if err := srv.RecvMsg(&req); err != nil {
		return err
	}
	opts := req.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "first append message must be options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	var n uint64
	size := 0
	for {
		err := srv.RecvMsg(&req)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := req.GetProposedMessage()
		if pm == nil {
			return status.Error(codes.InvalidArgument, "expected a proposed message")
		}
		if s.durable != nil {
			size += proto.Size(pm)
		}
		n++
	}

	if s.durable != nil {
		if err := s.durable(size); err != nil {
			return status.Error(codes.Internal, err.Error())
		}
	}
	s.mu.Lock()
	count := s.revs[name] + n
	s.revs[name] = count
	s.pos += n
	pos := s.pos
	s.mu.Unlock()

	success := &streams.AppendResp_Success{}
	if count == 0 {
		success.CurrentRevisionOption = &streams.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
	} else {
		success.CurrentRevisionOption = &streams.AppendResp_Success_CurrentRevision{CurrentRevision: count - 1}
	}
	if pos == 0 {
		success.PositionOption = &streams.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	} else {
		success.PositionOption = &streams.AppendResp_Success_Position{Position: &streams.AppendResp_Position{
			CommitPosition: pos, PreparePosition: pos,
		}}
	}
	return srv.SendAndClose(&streams.AppendResp{Result: &streams.AppendResp_Success_{Success: success}})
}

// Read answers plain $all reads with synthetic events.
func (s *stubStreams) Read(req *streams.ReadReq, srv streams.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "missing read options")
	}
	if o.GetSubscription() != nil {
		return status.Error(codes.Unimplemented, "the benchmark stub has no subscriptions")
	}
	if st := o.GetStream(); st != nil {
		id := st.GetStreamIdentifier()
		if id == nil {
			id = &shared.StreamIdentifier{}
		}
		return srv.Send(&streams.ReadResp{Content: &streams.ReadResp_StreamNotFound_{
			StreamNotFound: &streams.ReadResp_StreamNotFound{StreamIdentifier: id},
		}})
	}
	all := o.GetAll()
	if all == nil {
		return status.Error(codes.InvalidArgument, "missing stream option")
	}
	if o.GetReadDirection() != streams.ReadReq_Options_Forwards {
		return nil
	}
	var from uint64
	switch p := all.GetAllOption().(type) {
	case *streams.ReadReq_Options_AllOptions_Start:
		from = 1
	case *streams.ReadReq_Options_AllOptions_Position:
		from = max(1, p.Position.GetCommitPosition())
	default: // End: nothing after the head of an endless log
		return nil
	}
	asString := o.GetUuidOption().GetString_() != nil
	count := o.GetCount()
	for i := range count {
		if err := srv.Send(s.event(from+i, asString)); err != nil {
			return err
		}
	}
	return nil
}

// event builds the ReadResp for the synthetic event at position pos. Only
// the small wrappers are allocated; ids, names, metadata and data are shared.
func (s *stubStreams) event(pos uint64, asString bool) *streams.ReadResp {
	e := &s.pool[pos%stubPoolSize]
	id := e.structured
	if asString {
		id = e.str
	}
	return &streams.ReadResp{Content: &streams.ReadResp_Event{Event: &streams.ReadResp_ReadEvent{
		Event: &streams.ReadResp_ReadEvent_RecordedEvent{
			Id:               id,
			StreamIdentifier: e.stream,
			StreamRevision:   pos / stubPoolSize,
			PreparePosition:  pos,
			CommitPosition:   pos,
			Metadata:         s.metadata,
			Data:             s.data,
		},
		Position: &streams.ReadResp_ReadEvent_CommitPosition{CommitPosition: pos},
	}}}
}
