package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS target constants.
const (
	natsStream         = "EVENTS"
	natsSubjectPrefix  = "events."
	natsStartTimeout   = 30 * time.Second
	natsPreloadPending = 4000
	natsRecoverTimeout = 5 * time.Minute
)

// FindNATSServer returns path if set, else nats-server on PATH, else
// /usr/sbin/nats-server, if it exists.
func FindNATSServer(path string) (string, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("%w: %w", ErrNoNATSServer, err)
		}
		return path, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server", nil
	}
	return "", ErrNoNATSServer
}

// natsTarget is NATS JetStream: our own nats-server child on its own port and
// store directory, stream EVENTS on events.>, one subject per event stream,
// optimistic concurrency with the expected last sequence per subject.
type natsTarget struct {
	binary, dir, conf string
	port              int
	synced            bool // the server can fsync before every ack

	cmd   *exec.Cmd
	nc    *nats.Conn
	js    jetstream.JetStream
	notes []string

	recoveries []time.Duration // restart to first publish after each preload

	mu      sync.Mutex // guards the read-all consumer
	reader  jetstream.Consumer
	nextSeq uint64 // stream sequence the reader delivers next
}

func newNATSTarget(ctx context.Context, binary, dir string) (_ *natsTarget, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: nats: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &natsTarget{binary: binary, dir: dir, port: port, conf: filepath.Join(dir, "nats.conf"), synced: true}
	if err := writeNATSConfig(t.conf, dir, port, true); err != nil {
		return nil, err
	}
	// sync_interval (fsync before every acknowledgement) appeared in 2.10;
	// an older server refuses the option.
	if out, err := exec.CommandContext(ctx, binary, "-t", "-c", t.conf).CombinedOutput(); err != nil {
		if !strings.Contains(string(out), "sync_interval") {
			return nil, fmt.Errorf("bench: nats: config: %s", strings.TrimSpace(string(out)))
		}
		t.synced = false
	}
	version, _ := exec.CommandContext(ctx, binary, "--version").Output()
	t.notes = append(t.notes, strings.TrimSpace(string(version)))
	if t.synced {
		t.notes = append(t.notes, "jetstream sync_interval: always (fsync before every ack); the untimed preload runs with the default sync, then the server restarts synced")
	} else {
		t.notes = append(t.notes, "NOT the same durability: this nats-server has no sync_interval, JetStream fsyncs only every 2 minutes")
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close())
		}
	}()
	if err := t.launch(ctx, t.synced); err != nil {
		return nil, err
	}
	if _, err := t.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     natsStream,
		Subjects: []string{natsSubjectPrefix + ">"},
		Storage:  jetstream.FileStorage,
	}); err != nil {
		return nil, fmt.Errorf("bench: nats: create stream: %w", err)
	}
	return t, nil
}

// launch writes the config, starts the server and connects to it.
func (t *natsTarget) launch(ctx context.Context, sync bool) error {
	if err := writeNATSConfig(t.conf, t.dir, t.port, sync); err != nil {
		return err
	}
	if err := t.start(ctx, t.binary, t.conf); err != nil {
		return err
	}
	var err error
	if t.nc, err = nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", t.port)); err != nil {
		return fmt.Errorf("bench: nats: %w", err)
	}
	if t.js, err = jetstream.New(t.nc, jetstream.WithPublishAsyncMaxPending(natsPreloadPending)); err != nil {
		return fmt.Errorf("bench: nats: %w", err)
	}
	t.mu.Lock()
	t.reader = nil
	t.mu.Unlock()
	return nil
}

func writeNATSConfig(path, dir string, port int, sync bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: \"127.0.0.1:%d\"\njetstream {\n  store_dir: %q\n", port, filepath.Join(dir, "store"))
	if sync {
		b.WriteString("  sync_interval: always\n")
	}
	b.WriteString("}\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("bench: nats: %w", err)
	}
	return nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("bench: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the server and waits for its "Server is ready" log line.
func (t *natsTarget) start(ctx context.Context, binary, conf string) error {
	cmd := exec.Command(binary, "-c", conf)
	// Its own process group (a terminal's ^C goes to us, and we stop it), and
	// killed if we die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("bench: nats: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bench: nats: %w", err)
	}
	t.cmd = cmd
	ready := make(chan struct{})
	var (
		logMu sync.Mutex
		log   []string
	)
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			logMu.Lock()
			if len(log) < 50 {
				log = append(log, sc.Text())
			}
			logMu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "Server is ready") {
				close(ready)
				signalled = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	timer := time.NewTimer(natsStartTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-timer.C:
	case <-ctx.Done():
	}
	logMu.Lock()
	defer logMu.Unlock()
	return fmt.Errorf("bench: nats-server not ready after %v: %s", natsStartTimeout, strings.Join(log, "; "))
}

func (t *natsTarget) Name() string { return "nats" }

// Notes are the server's version and durability, and how long each restart
// after a preload took to take a publish.
func (t *natsTarget) Notes() []string {
	notes := slices.Clone(t.notes)
	for _, d := range t.recoveries {
		notes = append(notes, fmt.Sprintf("first publish %v after the restart that followed a preload (duplicates window rebuilt)", d.Round(time.Millisecond)))
	}
	return notes
}

func natsMsg(stream string, e Event) *nats.Msg {
	m := nats.NewMsg(natsSubjectPrefix + stream)
	m.Data = e.Data
	m.Header.Set("Type", e.Type)
	m.Header.Set(jetstream.MsgIDHeader, e.ID.String())
	return m
}

// Append publishes one event synchronously with the expected last sequence
// of its subject; a batch is published asynchronously, the first message
// carrying the expectation, and awaited: JetStream has no atomic
// multi-message append, so a batch can be partly stored.
func (t *natsTarget) Append(ctx context.Context, stream string, expected int64, events []Event) (int64, error) {
	exp := uint64(0) // 0: no message on the subject yet
	if expected != NoToken {
		exp = uint64(expected)
	}
	if len(events) == 1 {
		ack, err := t.js.PublishMsg(ctx, natsMsg(stream, events[0]), jetstream.WithExpectLastSequencePerSubject(exp))
		if err != nil {
			return 0, err
		}
		return int64(ack.Sequence), nil
	}
	futures := make([]jetstream.PubAckFuture, len(events))
	for i, e := range events {
		var opts []jetstream.PublishOpt
		if i == 0 {
			opts = append(opts, jetstream.WithExpectLastSequencePerSubject(exp))
		}
		f, err := t.js.PublishMsgAsync(natsMsg(stream, e), opts...)
		if err != nil {
			return 0, err
		}
		futures[i] = f
	}
	var last uint64
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			last = ack.Sequence
		case err := <-f.Err():
			return 0, err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return int64(last), nil
}

// ReadPage fetches from an ordered consumer, kept between pages while the
// reads go on where the last one ended.
func (t *natsTarget) ReadPage(ctx context.Context, after Cursor, count int) (Page, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	start := uint64(1)
	if after.Set {
		start = after.Commit + 1
	}
	if t.reader == nil || t.nextSeq != start {
		cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
		if start > 1 {
			cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start}
		}
		c, err := t.js.OrderedConsumer(ctx, natsStream, cfg)
		if err != nil {
			return Page{}, err
		}
		t.reader, t.nextSeq = c, start
	}
	p := Page{Last: after}
	for p.Events < count {
		batch, err := t.reader.FetchNoWait(count - p.Events)
		if err != nil {
			return Page{}, err
		}
		got, pending := 0, uint64(0)
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return Page{}, err
			}
			got++
			p.Events++
			p.Bytes += int64(len(m.Data()))
			p.Last = Cursor{Commit: md.Sequence.Stream, Set: true}
			t.nextSeq = md.Sequence.Stream + 1
			pending = md.NumPending
		}
		if err := batch.Error(); err != nil {
			return Page{}, err
		}
		if got == 0 || pending == 0 {
			break
		}
	}
	return p, nil
}

// CatchUp reads the stream from the start with an ordered consumer.
func (t *natsTarget) CatchUp(ctx context.Context, n int) error {
	c, err := t.js.OrderedConsumer(ctx, natsStream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return err
	}
	it, err := c.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	for got := 1; got <= n; got++ {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("after %d events: %w", got-1, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		if md.NumPending == 0 && got < n {
			return fmt.Errorf("caught up after %d events, before %d", got, n)
		}
	}
	return nil
}

// Preload publishes n events asynchronously, 100 per subject, without
// expectations. With sync_interval: always JetStream fsyncs every message
// alone (about a thousand a second here), so the preload restarts the server
// with its default sync, publishes, and restarts it synced: the stored
// events are the same, only the untimed preload is faster.
func (t *natsTarget) Preload(ctx context.Context, n int) (err error) {
	if !t.synced {
		return t.publishPreload(ctx, n)
	}
	if err := t.stop(); err != nil {
		return err
	}
	if err := t.launch(ctx, false); err != nil {
		return err
	}
	if err := t.publishPreload(ctx, n); err != nil {
		return err
	}
	info, err := t.streamInfo(ctx)
	if err != nil {
		return err
	}
	if err := t.stop(); err != nil {
		return err
	}
	if err := t.launch(ctx, true); err != nil {
		return err
	}
	start := time.Now()
	if err := t.awaitStream(ctx, info.State.LastSeq); err != nil {
		return err
	}
	t.recoveries = append(t.recoveries, time.Since(start))
	return nil
}

func (t *natsTarget) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	s, err := t.js.Stream(ctx, natsStream)
	if err != nil {
		return nil, fmt.Errorf("bench: nats: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench: nats: %w", err)
	}
	return info, nil
}

// awaitStream waits until the restarted server has recovered the stream up
// to lastSeq and takes a synchronous publish, polling (the server announces
// nothing) with a deadline.
func (t *natsTarget) awaitStream(ctx context.Context, lastSeq uint64) error {
	deadline := time.Now().Add(natsRecoverTimeout)
	var last error
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		info, err := t.streamInfo(cctx)
		t0 := time.Now()
		if err == nil && info.State.LastSeq >= lastSeq {
			// The probe is what append-1 does: a new subject, expected
			// empty, with a message id. The first message id after a
			// restart makes the server rebuild its duplicates window from
			// the messages of the last two minutes (the whole preload),
			// which takes seconds: the probe absorbs it.
			probe := natsMsg("bench-ready-"+uuid.NewString(), Event{ID: uuid.New(), Type: "Probe", Data: []byte("{}")})
			_, err = t.js.PublishMsg(cctx, probe, jetstream.WithExpectLastSequencePerSubject(0))
			if err == nil {
				cancel()
				return nil
			}
			err = fmt.Errorf("probe publish after %v: %w", time.Since(t0).Round(time.Millisecond), err)
		}
		cancel()
		if err == nil {
			err = fmt.Errorf("stream at %d, want %d", info.State.LastSeq, lastSeq)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("bench: nats: stream not back after restart in %v: %w", natsRecoverTimeout, last)
}

func (t *natsTarget) publishPreload(ctx context.Context, n int) error {
	var (
		w       *peerWriter
		futures []jetstream.PubAckFuture
	)
	for i := range n {
		rev := int64(i % preloadBatch)
		if rev == 0 {
			w = newPeerWriter(1, 1)
		}
		e := Event{ID: uuid.New(), Type: eventType(rev), Data: orderPayload(nil, w.orderIDs[0], rev)}
		f, err := t.js.PublishMsgAsync(natsMsg(w.streams[0], e))
		if err != nil {
			return fmt.Errorf("bench: nats preload: %w", err)
		}
		futures = append(futures, f)
		// Wait for a window of acknowledgements at a time: flow control, and
		// every message checked.
		if len(futures) == natsPreloadPending/2 || i == n-1 {
			for _, f := range futures {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					return fmt.Errorf("bench: nats preload: %w", err)
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			futures = futures[:0]
		}
	}
	return nil
}

func (t *natsTarget) Close() error { return t.stop() }

// stop closes the connection and stops the server: SIGINT, on which
// nats-server shuts down cleanly and exits 0 (SIGTERM exits 1).
func (t *natsTarget) stop() error {
	if t.nc != nil {
		t.nc.Close()
		t.nc = nil
	}
	if t.cmd == nil {
		return nil
	}
	cmd := t.cmd
	t.cmd = nil
	done := make(chan error, 1)
	_ = cmd.Process.Signal(os.Interrupt)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("bench: nats-server: %w", err)
		}
		return nil
	case <-timer.C:
		_ = cmd.Process.Kill()
		return fmt.Errorf("bench: nats-server did not stop on SIGINT: %w", <-done)
	}
}

// DiskBytes is the size of the files in the JetStream store directory.
func (t *natsTarget) DiskBytes(context.Context) (int64, error) {
	return dirBytes(filepath.Join(t.dir, "store"))
}
