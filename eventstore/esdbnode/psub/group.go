// A group: its state, its lifecycle (start, stop) and its two goroutines.
// The reader (read.go) fills the buffer from the source; the work goroutine
// (workLoop, below) expires timed-out messages (retries.go), writes parks
// (parking.go) and checkpoints (checkpoints.go). Read calls deliver, ack
// (delivery.go) and nack (retries.go). Every field below mu is guarded by it.

package psub

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

const pinBuckets = 1024

// message is one event on its way through a group.
type message struct {
	id    uuid.UUID // ack id: the link's id when a link is present
	seq   uint64    // revision (stream groups) or position ($all groups) in the source
	prev  int64     // checkpoint value if this were the oldest unfinished message
	event *eventlog.Record
	link  *eventlog.Record
	pos   uint64 // original position (link if present)
	retry int

	replay *replayPage // non-nil: a replayed parked message (outside the checkpoint sequence)

	client     *client // holder while in flight
	deadline   time.Time
	sentAt     time.Time
	parkReason string
	done       bool
}

// replayPage counts the replayed messages of one page still unfinished.
type replayPage struct {
	pending int
	done    chan struct{}
}

// client is one connected Read call.
type client struct {
	id        uint64
	slots     int
	inflight  int
	stringIDs bool
	queue     []queued // sent to c, not yet handed to its sender
	wake      chan struct{}
	dropped   chan struct{}
	dropErr   error
	gone      bool
	pins      int

	total      int64
	since      int64
	measuredAt time.Time
	latencies  []time.Duration // last few ack latencies (extra statistics)
}

// queued is a message on its way to a client's sender, with the retry
// count it is delivered with.
type queued struct {
	m     *message
	retry int32
}

func (c *client) free() bool { return !c.gone && c.inflight < c.slots }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// group is one persistent subscription group. mu guards everything below it;
// the reader goroutine reads the source, the work goroutine runs the timer,
// parks and checkpoints; Read calls ack, nack, connect and disconnect.
type group struct {
	s          *Service
	cfg        configEntry
	filter     *eventFilter
	key        string
	ckStream   string
	parkStream string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// ahead holds source records read beyond the last page, the first of
	// them at aheadFrom (read.go); the reader goroutine's own.
	ahead     []eventlog.Record
	aheadFrom uint64

	readerWake chan struct{}
	workWake   chan struct{}
	ckMetaDone bool // touched by the work goroutine, then by stop after it exits

	mu          sync.Mutex
	buffer      []*message // read, not yet dispatched
	retry       []*message // to redeliver, by (replay, seq)
	outstanding map[uuid.UUID]*message
	order       []*message // source messages in source order; done ones trimmed from the front
	parkQ       []*message
	nextRead    uint64
	lastScanned int64 // last source sequence number read (or skipped by the filter)
	lastKnown   int64 // last event read from the source, -1 none
	lastCk      int64 // last durable checkpoint, -1 none
	lastCkTime  time.Time
	processed   int64 // finished (or filtered) since the last checkpoint
	clients     []*client
	nextClient  uint64
	rr          int
	pins        map[uint32]*client
	live        bool
	loaded      bool
	replaying   bool
	faulted     error
	stopped     bool
	total       int64
	since       int64
	measuredAt  time.Time
}

func newGroup(s *Service, cfg configEntry) (*group, error) {
	f, err := newEventFilter(cfg.Filter)
	if err != nil {
		return nil, newGroupError(ErrInvalid, cfg.Stream, cfg.Group, "bad filter: "+err.Error())
	}
	key := groupKey(cfg.Stream, cfg.Group)
	ctx, cancel := context.WithCancel(s.baseCtx)
	return &group{
		s: s, cfg: cfg, filter: f, key: key,
		ckStream: checkpointStreamOf(key), parkStream: parkedStreamOf(key),
		ctx: ctx, cancel: cancel,
		readerWake: make(chan struct{}, 1), workWake: make(chan struct{}, 1),
		outstanding: map[uuid.UUID]*message{}, pins: map[uint32]*client{},
		lastKnown: -1, lastCk: -1,
	}, nil
}

// start loads the checkpoint and starts the goroutines.
func (g *group) start() error {
	ck, err := g.loadCheckpoint(g.ctx)
	if err != nil {
		return err
	}
	now := g.s.now()
	g.mu.Lock()
	if ck >= 0 {
		g.lastCk, g.lastScanned, g.nextRead = ck, ck, uint64(ck)+1
	} else {
		g.nextRead = g.cfg.StartPosition
		g.lastScanned = int64(g.cfg.StartPosition) - 1
	}
	g.measuredAt = now // lastCkTime stays zero: as in EventStoreDB, the first tick may checkpoint
	g.mu.Unlock()
	g.wg.Add(2)
	go g.readLoop()
	go g.workLoop()
	return nil
}

// stop ends the goroutines and drops every client; with final it writes
// pending parks and a last checkpoint.
func (g *group) stop(final bool) {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.cancel()
	g.wg.Wait()
	g.mu.Lock()
	for _, c := range g.clients {
		g.dropLocked(c, newGroupError(ErrDropped, g.cfg.Stream, g.cfg.Group, ""))
	}
	g.mu.Unlock()
	if final {
		ctx := g.s.baseCtx
		g.flushParks(ctx)
		g.checkpoint(ctx, false, true)
	}
}

func (g *group) workLoop() {
	defer g.wg.Done()
	t := time.NewTicker(g.s.tick())
	defer t.Stop()
	for {
		onTick := false
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
			onTick = true
			g.expire()
		case <-g.workWake:
		}
		g.flushParks(g.ctx)
		g.checkpoint(g.ctx, onTick, false)
	}
}
