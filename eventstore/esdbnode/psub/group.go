package psub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
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
	queue     []*eventMsg
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

func (g *group) loadCheckpoint(ctx context.Context) (int64, error) {
	recs, err := g.s.log.ReadStream(ctx, g.ckStream, eventlog.Backwards, math.MaxUint64, 1)
	var del *eventlog.StreamDeletedError
	switch {
	case errors.Is(err, eventlog.ErrStreamNotFound), errors.As(err, &del):
		return -1, nil
	case err != nil:
		return -1, fmt.Errorf("psub: read checkpoint of %s: %w", g.key, err)
	case len(recs) == 0:
		return -1, nil
	}
	var s string
	if err := json.Unmarshal(recs[0].Data, &s); err != nil {
		return -1, fmt.Errorf("psub: checkpoint of %s: %w", g.key, err)
	}
	v, err := parseSeq(s)
	if err != nil {
		return -1, fmt.Errorf("psub: checkpoint of %s: %w", g.key, err)
	}
	return v, nil
}

// ---- reading the source ----

func (g *group) readLoop() {
	defer g.wg.Done()
	ctx := g.ctx
	for {
		g.mu.Lock()
		limit := int(g.cfg.HistoryBufferSize)
		if g.live {
			limit = int(g.cfg.LiveBufferSize)
		}
		room := limit - len(g.buffer)
		if room <= 0 {
			g.live = false // the buffer is full: behind until consumers catch up
		}
		next, prev := g.nextRead, g.lastScanned
		g.mu.Unlock()
		if room <= 0 {
			select {
			case <-ctx.Done():
				return
			case <-g.readerWake:
			}
			continue
		}
		n := min(room, int(g.cfg.ReadBatchSize))
		head := g.s.log.Head()
		msgs, scanned, skipped, more, err := g.readPage(ctx, next, prev, n)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, eventlog.ErrClosed) {
				return
			}
			g.fault(err)
			return
		}
		g.mu.Lock()
		g.buffer = append(g.buffer, msgs...)
		g.order = append(g.order, msgs...)
		if scanned > g.lastScanned {
			g.lastScanned = scanned
			g.nextRead = uint64(scanned) + 1
		}
		if len(msgs) > 0 {
			g.lastKnown = int64(msgs[len(msgs)-1].seq)
		}
		g.processed += skipped
		g.live = !more
		g.loaded = true
		g.dispatchLocked()
		g.mu.Unlock()
		if skipped > 0 {
			signal(g.workWake)
		}
		if !more {
			if err := g.s.log.Wait(ctx, head); err != nil {
				return
			}
		}
	}
}

// readPage reads up to n source records from next; it returns the messages to
// deliver (prev filled in), the last sequence number scanned, how many records
// the filter skipped, and whether more may follow right away.
func (g *group) readPage(ctx context.Context, next uint64, prev int64, n int) ([]*message, int64, int64, bool, error) {
	var recs []eventlog.Record
	var err error
	if g.cfg.isAll() {
		recs, err = g.s.log.ReadAll(ctx, eventlog.Forwards, next, n)
	} else {
		recs, err = g.s.log.ReadStream(ctx, g.cfg.Stream, eventlog.Forwards, next, n)
		if errors.Is(err, eventlog.ErrStreamNotFound) {
			return nil, prev, 0, false, nil
		}
	}
	if err != nil {
		return nil, prev, 0, false, err
	}
	msgs := make([]*message, 0, len(recs))
	var skipped int64
	for i := range recs {
		r := &recs[i]
		seq := r.Revision
		if g.cfg.isAll() {
			seq = r.Position
			if defaultAllExcluded(r.Stream) {
				// Never delivered, and not counted towards a checkpoint:
				// the group's own checkpoint writes must not feed more.
				prev = int64(seq)
				continue
			}
			if !g.filter.match(r.Stream, r.Type) {
				prev = int64(seq)
				skipped++
				continue
			}
		}
		m, err := g.newMessage(ctx, r)
		if err != nil {
			return nil, prev, 0, false, err
		}
		m.seq, m.prev = seq, prev
		msgs = append(msgs, m)
		prev = int64(seq)
	}
	return msgs, prev, skipped, len(recs) == n, nil
}

// parseLink reads the "<n>@<stream>" data of a link event.
func parseLink(data []byte) (string, uint64, bool) {
	num, stream, ok := strings.Cut(string(data), "@")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return stream, n, true
}

func (g *group) newMessage(ctx context.Context, r *eventlog.Record) (*message, error) {
	m := &message{id: r.ID, pos: r.Position, event: r}
	if !g.cfg.ResolveLinkTos || r.Type != eventlog.TypeLink {
		return m, nil
	}
	stream, n, ok := parseLink(r.Data)
	if !ok {
		return m, nil // not a link after all: delivered unresolved
	}
	m.link = r
	m.event = nil
	target, found, err := g.s.log.ReadEvent(ctx, stream, n)
	if err != nil {
		return nil, err
	}
	if found {
		m.event = &target
	}
	return m, nil
}

// fault drops every client after a read error (the source was deleted).
func (g *group) fault(err error) {
	g.s.logger().Warn("persistent subscription faulted", "group", g.key, "err", err)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faulted = err
	for _, c := range g.clients {
		g.dropLocked(c, newGroupError(ErrDropped, g.cfg.Stream, g.cfg.Group, err.Error()))
	}
}

// ---- dispatch ----

func (g *group) pinnedStrategy() bool {
	return g.cfg.NamedConsumerStrategy == strategyPinned || g.cfg.NamedConsumerStrategy == strategyPinnedByCorrelation
}

func (g *group) anyFree() bool {
	for _, c := range g.clients {
		if c.free() {
			return true
		}
	}
	return false
}

func (g *group) dispatchLocked() {
	if len(g.clients) == 0 {
		return
	}
	now := g.s.now()
	g.retry = g.pushQueue(g.retry, now)
	before := len(g.buffer)
	g.buffer = g.pushQueue(g.buffer, now)
	if len(g.buffer) < before {
		signal(g.readerWake)
	}
}

// pushQueue sends what it can of q, in order, and returns the rest (in q's
// backing array). Once no client can take more it stops looking and keeps
// the rest as is (re-slicing past a sent prefix, else one copy), so a
// dispatch after each single ack costs what it sends, not the length of the
// buffer.
func (g *group) pushQueue(q []*message, now time.Time) []*message {
	pinned := g.pinnedStrategy()
	kept := q[:0]
	for i, m := range q {
		stop := !g.anyFree()
		if !stop {
			if _, busy := g.outstanding[m.id]; !busy {
				if c := g.pick(m); c != nil {
					g.sendLocked(c, m, now)
					continue
				}
				stop = !pinned
			}
		}
		if stop {
			switch len(kept) {
			case i: // nothing sent
				return q
			case 0: // a prefix was sent: drop it without moving the rest
				clear(q[:i])
				return q[i:]
			}
			kept = append(kept, q[i:]...)
			break
		}
		kept = append(kept, m)
	}
	clear(q[len(kept):])
	return kept
}

func (g *group) pick(m *message) *client {
	n := len(g.clients)
	switch g.cfg.NamedConsumerStrategy {
	case strategyDispatchToSingle:
		for _, c := range g.clients {
			if c.free() {
				return c
			}
		}
	case strategyPinned, strategyPinnedByCorrelation:
		b := g.bucket(m)
		c := g.pins[b]
		if c == nil {
			for _, cand := range g.clients {
				if c == nil || cand.pins < c.pins {
					c = cand
				}
			}
			g.pins[b] = c
			c.pins++
		}
		if c.free() {
			return c
		}
	default: // RoundRobin
		for k := 0; k < n; k++ {
			c := g.clients[(g.rr+k)%n]
			if c.free() {
				g.rr = (g.rr + k + 1) % n
				return c
			}
		}
	}
	return nil
}

// bucket hashes the event's stream (Pinned) or its $correlationId
// (PinnedByCorrelation, falling back to the stream).
func (g *group) bucket(m *message) uint32 {
	r := m.event
	if r == nil {
		r = m.link
	}
	key := r.Stream
	if g.cfg.NamedConsumerStrategy == strategyPinnedByCorrelation && m.event != nil && len(m.event.Metadata) > 0 {
		var md struct {
			CorrelationID string `json:"$correlationId"`
		}
		if json.Unmarshal(m.event.Metadata, &md) == nil && md.CorrelationID != "" {
			key = md.CorrelationID
		}
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32() % pinBuckets
}

func (g *group) sendLocked(c *client, m *message, now time.Time) {
	m.client = c
	m.sentAt = now
	m.deadline = now.Add(time.Duration(g.cfg.MessageTimeout) * time.Millisecond)
	g.outstanding[m.id] = m
	c.inflight++
	c.queue = append(c.queue, toReadResp(m, c.stringIDs))
	signal(c.wake)
}

// ---- consumers ----

func (g *group) connect(slots int, stringIDs bool) (*client, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return nil, newGroupError(ErrDropped, g.cfg.Stream, g.cfg.Group, "")
	}
	if g.faulted != nil {
		return nil, newGroupError(ErrDropped, g.cfg.Stream, g.cfg.Group, g.faulted.Error())
	}
	if g.cfg.MaxSubscriberCount > 0 && len(g.clients) >= int(g.cfg.MaxSubscriberCount) {
		return nil, newGroupError(ErrMaxSubscribers, g.cfg.Stream, g.cfg.Group, "")
	}
	if slots <= 0 {
		slots = defaultClientSlots
	}
	g.nextClient++
	c := &client{
		id: g.nextClient, slots: slots, stringIDs: stringIDs,
		wake: make(chan struct{}, 1), dropped: make(chan struct{}),
		measuredAt: g.s.now(),
	}
	g.clients = append(g.clients, c)
	return c, nil
}

// takeQueue hands the sender the messages queued for c.
func (g *group) takeQueue(c *client) []*eventMsg {
	g.mu.Lock()
	defer g.mu.Unlock()
	q := c.queue
	c.queue = nil
	return q
}

// startDelivery lets dispatch reach c (after its confirmation was sent).
func (g *group) startDelivery() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dispatchLocked()
}

func (g *group) dropLocked(c *client, err error) {
	if c.dropErr == nil && !c.gone {
		c.dropErr = err
		close(c.dropped)
	}
}

// disconnect removes c and puts its unacknowledged messages back for retry
// (retry count + 1, no park check), in source order.
func (g *group) disconnect(c *client) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.gone {
		return
	}
	c.gone = true
	g.clients = slices.DeleteFunc(g.clients, func(x *client) bool { return x == c })
	for b, pc := range g.pins {
		if pc == c {
			delete(g.pins, b)
		}
	}
	var back []*message
	for id, m := range g.outstanding {
		if m.client == c {
			delete(g.outstanding, id)
			back = append(back, m)
		}
	}
	sort.Slice(back, func(i, j int) bool { return lessMsg(back[i], back[j]) })
	for _, m := range back {
		g.retryLocked(m, false)
	}
	c.queue = nil
	g.dispatchLocked()
}

func lessMsg(a, b *message) bool {
	if (a.replay != nil) != (b.replay != nil) {
		return a.replay == nil
	}
	return a.seq < b.seq
}

func (g *group) ack(c *client, ids []uuid.UUID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.s.now()
	for _, id := range ids {
		m := g.outstanding[id]
		if m == nil || m.client != c {
			continue
		}
		delete(g.outstanding, id)
		c.inflight--
		c.total++
		c.since++
		if g.cfg.ExtraStatistics {
			if len(c.latencies) >= 256 {
				c.latencies = c.latencies[1:]
			}
			c.latencies = append(c.latencies, now.Sub(m.sentAt))
		}
		g.finishLocked(m)
	}
	g.dispatchLocked()
	if g.processed >= int64(g.cfg.MaxCheckPointCount) {
		signal(g.workWake)
	}
}

func (g *group) nack(c *client, ids []uuid.UUID, action persistent.ReadReq_Nack_Action, reason string) {
	if action == persistent.ReadReq_Nack_Stop {
		// Accepted and ignored, as on a real node: the messages stay in
		// flight until they time out.
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		m := g.outstanding[id]
		if m == nil || m.client != c {
			continue
		}
		delete(g.outstanding, id)
		c.inflight--
		switch action {
		case persistent.ReadReq_Nack_Park:
			g.parkLocked(m, "Client explicitly NAK'ed message.\n"+reason)
		case persistent.ReadReq_Nack_Skip:
			g.finishLocked(m)
		default: // Retry, Unknown
			g.retryLocked(m, true)
		}
	}
	g.dispatchLocked()
	if g.processed >= int64(g.cfg.MaxCheckPointCount) {
		signal(g.workWake)
	}
}

func (g *group) finishLocked(m *message) {
	m.done = true
	m.client = nil
	g.total++
	g.since++
	if m.replay != nil {
		m.replay.pending--
		if m.replay.pending == 0 {
			close(m.replay.done)
		}
		return
	}
	g.processed++
	g.trimLocked()
}

func (g *group) trimLocked() {
	i := 0
	for i < len(g.order) && g.order[i].done {
		g.order[i] = nil
		i++
	}
	if i > 0 {
		g.order = g.order[i:]
	}
}

func (g *group) retryLocked(m *message, parkCheck bool) {
	m.client = nil
	if parkCheck && m.retry >= int(g.cfg.MaxRetryCount) {
		g.parkLocked(m, fmt.Sprintf("Reached retry count of %d", g.cfg.MaxRetryCount))
		return
	}
	m.retry++
	i := sort.Search(len(g.retry), func(i int) bool { return lessMsg(m, g.retry[i]) })
	g.retry = slices.Insert(g.retry, i, m)
}

func (g *group) parkLocked(m *message, reason string) {
	m.client = nil
	m.parkReason = reason
	g.parkQ = append(g.parkQ, m)
	signal(g.workWake)
}

// ---- timer, parks, checkpoints ----

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

// expire retries (or parks) the messages in flight past their timeout.
func (g *group) expire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.s.now()
	var late []*message
	for id, m := range g.outstanding {
		if now.After(m.deadline) {
			delete(g.outstanding, id)
			m.client.inflight--
			late = append(late, m)
		}
	}
	sort.Slice(late, func(i, j int) bool { return lessMsg(late[i], late[j]) })
	for _, m := range late {
		g.retryLocked(m, true)
	}
	g.dispatchLocked()
}

type parkedMeta struct {
	Added                   string `json:"Added"`
	Reason                  string `json:"Reason"`
	SubscriptionEventNumber uint64 `json:"SubscriptionEventNumber"`
}

// flushParks appends the queued parked messages as links to the parked
// stream; a message is finished only once its link is durable.
func (g *group) flushParks(ctx context.Context) {
	g.mu.Lock()
	q := g.parkQ
	g.parkQ = nil
	g.mu.Unlock()
	if len(q) == 0 {
		return
	}
	now := g.s.now().UTC().Format(time.RFC3339Nano)
	events := make([]eventlog.Proposed, len(q))
	for i, m := range q {
		var data []byte
		num := m.seq
		if m.event != nil {
			data = fmt.Appendf(nil, "%d@%s", m.event.Revision, m.event.Stream)
			num = m.event.Revision
		} else {
			data = m.link.Data
		}
		md, _ := json.Marshal(parkedMeta{Added: now, Reason: m.parkReason, SubscriptionEventNumber: num})
		events[i] = eventlog.Proposed{ID: g.s.newID(), Type: eventlog.TypeLink, Data: data, Metadata: md}
	}
	_, err := g.s.log.Append(ctx, g.parkStream, eventlog.Expected{Kind: eventlog.ExpectAny}, events)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.s.logger().Warn("persistent subscription: park failed", "group", g.key, "err", err)
		g.parkQ = append(q, g.parkQ...)
		return
	}
	for _, m := range q {
		g.finishLocked(m)
	}
}

// candidateLocked is the checkpoint the group may write: the sequence number
// before the oldest unfinished message, or the last one scanned.
func (g *group) candidateLocked() int64 {
	g.trimLocked()
	if len(g.order) > 0 {
		return g.order[0].prev
	}
	return g.lastScanned
}

// checkpoint writes a checkpoint when the policy says so (force: whenever the
// candidate moved).
func (g *group) checkpoint(ctx context.Context, onTick, force bool) {
	g.mu.Lock()
	cand := g.candidateLocked()
	diff := g.processed
	now := g.s.now()
	after := time.Duration(g.cfg.CheckPointAfter) * time.Millisecond
	timeOK := g.cfg.CheckPointAfter > 0 && now.Sub(g.lastCkTime) >= after
	countMax := diff >= int64(g.cfg.MaxCheckPointCount)
	write := cand > g.lastCk && (force || ((timeOK || countMax) && ((diff >= int64(g.cfg.MinCheckPointCount) && onTick) || countMax)))
	g.mu.Unlock()
	if !write || cand < 0 {
		return
	}
	if err := g.writeCheckpoint(ctx, cand); err != nil {
		g.s.logger().Warn("persistent subscription: checkpoint failed", "group", g.key, "err", err)
		return
	}
	g.mu.Lock()
	g.lastCk = cand
	g.processed -= diff
	g.lastCkTime = now
	g.mu.Unlock()
}

func (g *group) writeCheckpoint(ctx context.Context, cand int64) error {
	data, _ := json.Marshal(formatSeq(g.cfg.isAll(), cand))
	_, err := g.s.log.Append(ctx, g.ckStream, eventlog.Expected{Kind: eventlog.ExpectAny}, []eventlog.Proposed{{
		ID: g.s.newID(), Type: checkpointType, IsJSON: true, Data: data,
	}})
	if err != nil {
		return err
	}
	if !g.ckMetaDone {
		if err := g.s.ensureMaxCount(ctx, g.ckStream); err != nil {
			return err
		}
		g.ckMetaDone = true
	}
	return nil
}

// ---- parked messages ----

// replayParked starts replaying the parked messages with a parked-stream
// number below stopAt (all when stopAt < 0); a replay already running wins.
func (g *group) replayParked(stopAt int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.replaying || g.stopped {
		return
	}
	g.replaying = true
	g.wg.Add(1)
	go g.replayLoop(stopAt)
}

// replayLoop redelivers parked messages page by page through the retry queue
// (so through the normal in-flight limits), and truncates the parked stream
// ($tb) past each page once every message of it is finished (acked, skipped
// or parked again), so a crash never loses a parked message.
func (g *group) replayLoop(stopAt int64) {
	defer g.wg.Done()
	defer func() {
		g.mu.Lock()
		g.replaying = false
		g.mu.Unlock()
	}()
	ctx := g.ctx
	st, err := g.s.log.Stream(ctx, g.parkStream)
	if err != nil || st.LastRevision < 0 || st.SoftDeleted || st.Tombstoned {
		return
	}
	end := uint64(st.LastRevision) + 1
	if stopAt >= 0 && uint64(stopAt) < end {
		end = uint64(stopAt)
	}
	from := uint64(0)
	if tb := st.Metadata.TruncateBefore; tb != nil && *tb > 0 {
		from = uint64(*tb)
	}
	batch := uint64(g.cfg.ReadBatchSize)
	for from < end {
		recs, err := g.s.log.ReadStream(ctx, g.parkStream, eventlog.Forwards, from, int(min(batch, end-from)))
		if err != nil || len(recs) == 0 {
			return
		}
		page := &replayPage{done: make(chan struct{})}
		var msgs []*message
		for i := range recs {
			r := &recs[i]
			if r.Revision >= end {
				break
			}
			from = r.Revision + 1
			stream, n, ok := parseLink(r.Data)
			if !ok {
				continue
			}
			target, found, err := g.s.log.ReadEvent(ctx, stream, n)
			if err != nil {
				return
			}
			if !found {
				continue
			}
			msgs = append(msgs, &message{id: r.ID, seq: r.Revision, prev: -1, event: &target, link: r, pos: r.Position, replay: page})
		}
		if len(msgs) > 0 {
			g.mu.Lock()
			page.pending = len(msgs)
			g.retry = append(g.retry, msgs...)
			g.dispatchLocked()
			g.mu.Unlock()
			select {
			case <-page.done:
			case <-ctx.Done():
				return
			}
		}
		if err := g.s.writeTruncateBefore(ctx, g.parkStream, from); err != nil {
			return
		}
	}
}

// ---- info ----

func (g *group) parkedCount(ctx context.Context) int64 {
	st, err := g.s.log.Stream(ctx, g.parkStream)
	if err != nil || st.LastRevision < 0 || st.SoftDeleted || st.Tombstoned {
		return 0
	}
	tb := int64(0)
	if st.Metadata.TruncateBefore != nil {
		tb = *st.Metadata.TruncateBefore
	}
	return max(0, st.LastRevision-tb+1)
}

func perSecond(n int64, d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	return int32(float64(n) / d.Seconds())
}

func (g *group) info(ctx context.Context) *persistent.SubscriptionInfo {
	parked := g.parkedCount(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.s.now()
	all := g.cfg.isAll()
	pos := func(v int64) string {
		if v < 0 {
			return ""
		}
		return formatSeq(all, v)
	}
	var st []string
	switch {
	case g.faulted != nil:
		st = append(st, "Faulted")
	case !g.loaded:
		st = append(st, "NotReady")
	case g.live:
		st = append(st, "Live")
	default:
		st = append(st, "Behind")
	}
	if g.replaying {
		st = append(st, "ReplayingParkedMessages")
	}
	info := &persistent.SubscriptionInfo{
		EventSource:                   g.cfg.Stream,
		GroupName:                     g.cfg.Group,
		Status:                        strings.Join(st, ", "),
		AveragePerSecond:              perSecond(g.since, now.Sub(g.measuredAt)),
		TotalItems:                    g.total,
		CountSinceLastMeasurement:     g.since,
		LastCheckpointedEventPosition: pos(g.lastCk),
		LastKnownEventPosition:        pos(g.lastKnown),
		ResolveLinkTos:                g.cfg.ResolveLinkTos,
		StartFrom:                     g.cfg.StartFrom,
		MessageTimeoutMilliseconds:    g.cfg.MessageTimeout,
		ExtraStatistics:               g.cfg.ExtraStatistics,
		MaxRetryCount:                 g.cfg.MaxRetryCount,
		LiveBufferSize:                g.cfg.LiveBufferSize,
		BufferSize:                    g.cfg.HistoryBufferSize,
		ReadBatchSize:                 g.cfg.ReadBatchSize,
		CheckPointAfterMilliseconds:   g.cfg.CheckPointAfter,
		MinCheckPointCount:            g.cfg.MinCheckPointCount,
		MaxCheckPointCount:            g.cfg.MaxCheckPointCount,
		RetryBufferCount:              int32(len(g.retry)),
		TotalInFlightMessages:         int32(len(g.outstanding)),
		OutstandingMessagesCount:      int32(len(g.outstanding)),
		NamedConsumerStrategy:         g.cfg.NamedConsumerStrategy,
		MaxSubscriberCount:            g.cfg.MaxSubscriberCount,
		ParkedMessageCount:            parked,
	}
	if g.live {
		info.LiveBufferCount = int64(len(g.buffer))
	} else {
		info.ReadBufferCount = int32(len(g.buffer))
	}
	g.since, g.measuredAt = 0, now
	for _, c := range g.clients {
		ci := &persistent.SubscriptionInfo_ConnectionInfo{
			AverageItemsPerSecond:     perSecond(c.since, now.Sub(c.measuredAt)),
			TotalItems:                c.total,
			CountSinceLastMeasurement: c.since,
			AvailableSlots:            int32(c.slots - c.inflight),
			InFlightMessages:          int32(c.inflight),
			ConnectionName:            defaultConnName,
		}
		if g.cfg.ExtraStatistics {
			ci.ObservedMeasurements = latencyStats(c.latencies)
		}
		c.since, c.measuredAt = 0, now
		info.Connections = append(info.Connections, ci)
	}
	return info
}

// latencyStats reports ack latencies in microseconds.
func latencyStats(l []time.Duration) []*persistent.SubscriptionInfo_Measurement {
	if len(l) == 0 {
		return nil
	}
	s := slices.Clone(l)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	us := func(d time.Duration) int64 { return d.Microseconds() }
	return []*persistent.SubscriptionInfo_Measurement{
		{Key: "Mean", Value: us(sum / time.Duration(len(s)))},
		{Key: "Median", Value: us(s[len(s)/2])},
		{Key: "Fastest", Value: us(s[0])},
		{Key: "Slowest", Value: us(s[len(s)-1])},
	}
}
