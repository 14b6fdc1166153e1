package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/orderstore/orders/eventstore"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/orderstore/orders/eventstore/esdbnode"
)

// esdbPreloadBatch is the events per append of the node's Preload.
const esdbPreloadBatch = 500

// childStartTimeout bounds how long a node run as a child may take to print
// its ready line.
const childStartTimeout = time.Minute

// esdbTarget is the embedded node (in-process, as a child process, or an
// external node) through the official client.
type esdbTarget struct {
	c     *esdb.Client
	node  *esdbnode.Server // in-process node, or nil
	child *exec.Cmd        // node run as a child process, or nil
	where string           // "in-process", "child process", "external"
	url   string           // connection string of the node
	dir   string           // the node's data directory ("" for an external node)

	childErr *lockedWriter // the child's stderr
	waitOnce sync.Once
	waitErr  error
}

// esdbConfig says which node the esdbTarget measures.
type esdbConfig struct {
	URL     string   // an external node; wins over the others
	Command []string // run this command as the node (it must print the ready line as JSON)
	DataDir string   // data directory of an in-process node
	Logger  *slog.Logger
}

func newESDBTarget(ctx context.Context, cfg esdbConfig) (_ *esdbTarget, err error) {
	t := &esdbTarget{}
	url := cfg.URL
	switch {
	case url != "":
		t.where = "external"
	case len(cfg.Command) > 0:
		t.where = "child process"
		if url, err = t.startChild(ctx, cfg.Command); err != nil {
			return nil, err
		}
	default:
		t.where = "in-process"
		if cfg.DataDir == "" {
			return nil, fmt.Errorf("%w: a data directory is required for the embedded node", ErrInvalidArgument)
		}
		n, err := esdbnode.New(esdbnode.Config{Addr: "127.0.0.1:0", DataDir: cfg.DataDir, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("bench: node: %w", err)
		}
		if err := n.Start(); err != nil {
			return nil, fmt.Errorf("bench: start node: %w", err)
		}
		t.node = n
		url = n.ConnectionString()
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close())
		}
	}()
	t.url = url
	if cfg.URL == "" {
		t.dir = cfg.DataDir
	}
	if t.c, err = eventstore.Connect(url); err != nil {
		return nil, err
	}
	if err := WarmUp(ctx, t.c); err != nil {
		return nil, err
	}
	return t, nil
}

// startChild runs the node command and waits for its ready line:
// {"addr": ..., "connectionString": ...}.
func (t *esdbTarget) startChild(ctx context.Context, command []string) (string, error) {
	cmd := exec.Command(command[0], command[1:]...)
	// Its own process group (a terminal's ^C goes to us, and we stop it), and
	// killed if we die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	t.childErr = &lockedWriter{}
	cmd.Stderr = t.childErr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", fmt.Errorf("bench: node command: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("bench: node command: %w", err)
	}
	t.child = cmd
	type ready struct {
		ConnectionString string `json:"connectionString"`
	}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, r)
	}()
	timer := time.NewTimer(childStartTimeout)
	defer timer.Stop()
	select {
	case line := <-lines:
		var rd ready
		if err := json.Unmarshal([]byte(line), &rd); err != nil || rd.ConnectionString == "" {
			_ = t.stopChild()
			return "", fmt.Errorf("bench: node command printed %q, not its ready line (stderr: %s)", strings.TrimSpace(line), t.childStderr())
		}
		return rd.ConnectionString, nil
	case <-timer.C:
		_ = t.stopChild()
		return "", fmt.Errorf("bench: node command not ready after %v", childStartTimeout)
	case <-ctx.Done():
		_ = t.stopChild()
		return "", ctx.Err()
	}
}

func (t *esdbTarget) childStderr() string {
	t.childErr.mu.Lock()
	defer t.childErr.mu.Unlock()
	return strings.TrimSpace(t.childErr.buf.String())
}

// stopChild ends the child with SIGTERM (SIGKILL after 30 s) and waits.
func (t *esdbTarget) stopChild() error {
	t.waitOnce.Do(func() {
		done := make(chan error, 1)
		_ = t.child.Process.Signal(syscall.SIGTERM)
		go func() { done <- t.child.Wait() }()
		timer := time.NewTimer(30 * time.Second)
		defer timer.Stop()
		select {
		case err := <-done:
			t.waitErr = err
		case <-timer.C:
			_ = t.child.Process.Kill()
			t.waitErr = fmt.Errorf("bench: node child did not stop on SIGTERM: %w", <-done)
		}
	})
	return t.waitErr
}

// lockedWriter is a buffer safe for concurrent use.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (t *esdbTarget) Name() string { return "node" }

func (t *esdbTarget) Append(ctx context.Context, stream string, expected int64, events []Event) (int64, error) {
	var exp esdb.ExpectedRevision = esdb.NoStream{}
	if expected != NoToken {
		exp = esdb.Revision(uint64(expected))
	}
	data := make([]esdb.EventData, len(events))
	for i, e := range events {
		data[i] = esdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: esdb.ContentTypeJson, Data: e.Data}
	}
	res, err := t.c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, data...)
	if err != nil {
		return 0, err
	}
	return int64(res.NextExpectedVersion), nil
}

func (t *esdbTarget) ReadPage(ctx context.Context, after Cursor, count int) (Page, error) {
	var (
		from esdb.AllPosition = esdb.Start{}
		skip *esdb.Position
	)
	if after.Set {
		pos := esdb.Position{Commit: after.Commit, Prepare: after.Prepare}
		from, skip = pos, &pos
		count++ // a forwards read from a position returns the event at it again
	}
	got, n, last, err := readPage(ctx, t.c, from, skip, count)
	if err != nil {
		return Page{}, err
	}
	return Page{Events: got, Bytes: n, Last: Cursor{Commit: last.Commit, Prepare: last.Prepare, Set: true}}, nil
}

func (t *esdbTarget) CatchUp(ctx context.Context, n int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := t.c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{}})
	if err != nil {
		return err
	}
	defer sub.Close()
	for got := 0; got < n; {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			return fmt.Errorf("subscription dropped after %d events: %w", got, ev.SubscriptionDropped.Error)
		case ev.EventAppeared != nil:
			got++
		}
	}
	return nil
}

func (t *esdbTarget) Preload(ctx context.Context, n int) error {
	_, err := peerWorkloads{}.appendN(ctx, t, "preload", preloadWriters, esdbPreloadBatch, n)
	return err
}

// Settle waits until the node's process is idle: after a preload its index
// compacts what the load wrote. A child process is watched alone; an
// in-process node is watched through this process, whose clients are idle
// meanwhile. An external node is not watched.
func (t *esdbTarget) Settle(ctx context.Context) error {
	switch t.where {
	case "child process":
		return waitIdle(ctx, t.child.Process.Pid, settleMax)
	case "in-process":
		return waitIdle(ctx, 0, settleMax)
	default:
		return nil
	}
}

// DiskBytes is the size of the files in the node's data directory (chunk
// files, preallocated, and the index).
func (t *esdbTarget) DiskBytes(context.Context) (int64, error) {
	if t.dir == "" {
		return 0, fmt.Errorf("bench: an external node's data directory is not known")
	}
	return dirBytes(t.dir)
}

// RSS is the resident memory of the node's process: the child's, or this
// process's when the node runs in-process (then it includes the benchmark's
// own clients).
func (t *esdbTarget) RSS() (int64, error) {
	switch t.where {
	case "child process":
		return readRSS(fmt.Sprintf("/proc/%d/status", t.child.Process.Pid))
	case "in-process":
		return readRSS("/proc/self/status")
	default:
		return 0, fmt.Errorf("%w: the resident memory of an external node is not known", ErrInvalidArgument)
	}
}

// readRSS reads VmRSS from a /proc/<pid>/status file, in bytes.
func readRSS(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("bench: unexpected VmRSS line %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("bench: VmRSS: %w", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("bench: no VmRSS in %s", path)
}

func (t *esdbTarget) Close() error {
	var errs []error
	if t.c != nil {
		errs = append(errs, t.c.Close())
	}
	if t.node != nil {
		errs = append(errs, t.node.Close())
	}
	if t.child != nil {
		if err := t.stopChild(); err != nil {
			errs = append(errs, fmt.Errorf("%w (stderr: %s)", err, t.childStderr()))
		}
	}
	return errors.Join(errs...)
}
