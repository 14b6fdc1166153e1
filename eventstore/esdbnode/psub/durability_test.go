package psub_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

const crashChildEnv = "PSUB_CRASHTEST_CHILD_DIR"

// TestMain turns the test binary into a node process when the crash test
// re-executes it: it serves the data directory named by the environment and
// prints its address, until it is killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		srv, err := esdbnode.New(esdbnode.Config{Addr: "127.0.0.1:0", DataDir: dir})
		if err == nil {
			err = srv.Start()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		fmt.Println("ADDR " + srv.Addr())
		select {}
	}
	os.Exit(m.Run())
}

func TestRestartKeepsGroupsCheckpointsAndParked(t *testing.T) {
	dir := t.TempDir()
	srv, c := startNodeAt(t, dir)
	s, g := uniq("s"), uniq("g")
	appendN(t, c, s, 0, 20)
	createStream(t, c, s, g, esdb.Start{}, func(st *esdb.PersistentSubscriptionSettings) {
		st.CheckpointLowerBound, st.CheckpointUpperBound = 1, 1
	})
	sub := subscribe(t, c, s, g, 5)
	for want := range 10 {
		ev := sub.next(t)
		require.Equal(t, uint64(want), ev.Event.OriginalEvent().EventNumber)
		sub.ack(t, ev)
	}
	sub.nack(t, esdb.NackActionPark, "bad", sub.next(t)) // event 10
	for range 4 {
		sub.next(t) // 11..14 in flight, never acked
	}
	eventually(t, "checkpoint before the oldest unacked", func() (bool, string) {
		st := info(t, c, s, g).Stats
		if st.LastCheckpointedEventRevision == nil {
			return false, "none"
		}
		return *st.LastCheckpointedEventRevision == 10 && st.ParkedMessagesCount == 1, fmt.Sprint(*st.LastCheckpointedEventRevision)
	})
	require.NoError(t, sub.ps.Close())
	require.NoError(t, srv.Close())

	_, c2 := startNodeAt(t, dir)
	i := info(t, c2, s, g)
	require.NotNil(t, i.Stats.LastCheckpointedEventRevision)
	assert.Equal(t, uint64(10), *i.Stats.LastCheckpointedEventRevision)
	assert.Equal(t, int64(1), i.Stats.ParkedMessagesCount)
	assert.Equal(t, int32(1), i.Settings.CheckpointUpperBound)

	sub2 := subscribe(t, c2, s, g, 50)
	for want := 11; want < 20; want++ {
		ev := sub2.next(t)
		require.Equal(t, uint64(want), ev.Event.OriginalEvent().EventNumber, "resumes after the checkpoint, nothing skipped")
		sub2.ack(t, ev)
	}
	require.NoError(t, c2.ReplayParkedMessages(t.Context(), s, g, esdb.ReplayParkedMessagesOptions{}))
	ev := sub2.next(t)
	assert.Equal(t, 10, payloadN(t, ev), "the parked message survived the restart")
	sub2.ack(t, ev)
}

// crashNode is a node in a child process.
type crashNode struct {
	cmd    *exec.Cmd
	client *esdb.Client
}

func startCrashNode(t *testing.T, dir string) *crashNode {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child node did not start: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	require.True(t, ok, "child said %q", line)
	client, err := esdbnodetest.NewClient("esdb://" + addr + "?tls=false")
	require.NoError(t, err)
	n := &crashNode{cmd: cmd, client: client}
	t.Cleanup(func() { n.kill() })
	return n
}

func (n *crashNode) kill() {
	if n.cmd.ProcessState == nil {
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		_ = n.cmd.Wait()
	}
	_ = n.client.Close()
}

// TestCrashConsumersAckWhileKilled appends events, lets two consumers ack
// them while the node process is SIGKILLed at seeded random moments, and
// checks after the restarts that every event was delivered and acked at
// least once (none skipped); duplicates are counted and reported.
func TestCrashConsumersAckWhileKilled(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PSUB_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rounds, perRound := 6, 150
	if testing.Short() {
		rounds, perRound = 3, 60
	}
	t.Logf("seed %d (PSUB_CRASH_SEED to replay)", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	dir := t.TempDir()
	const stream, group = "crash-stream", "crash-group"

	var mu sync.Mutex
	acks := map[uint64]int{}
	deliveries := 0
	total := 0
	killAt := 0                       // acks in this round after which the node is killed
	roundAcks := 0                    // acks in this round
	killNow := make(chan struct{}, 1) // signalled when roundAcks reaches killAt

	consume := func(ctx context.Context, cl *esdb.Client, wg *sync.WaitGroup) {
		defer wg.Done()
		sub, err := cl.SubscribeToPersistentSubscription(ctx, stream, group, esdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 8})
		if err != nil {
			return
		}
		defer sub.Close()
		for {
			ev := sub.Recv()
			if ev.EventAppeared == nil {
				return
			}
			mu.Lock()
			deliveries++
			mu.Unlock()
			if sub.Ack(ev.EventAppeared.Event) != nil {
				return
			}
			mu.Lock()
			acks[ev.EventAppeared.Event.OriginalEvent().EventNumber]++
			roundAcks++
			if roundAcks == killAt {
				killNow <- struct{}{}
			}
			mu.Unlock()
		}
	}
	allAcked := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := range uint64(total) {
			if acks[i] == 0 {
				return false
			}
		}
		return true
	}

	for round := 0; round <= rounds; round++ {
		node := startCrashNode(t, dir)
		if round == 0 {
			require.NoError(t, node.client.CreatePersistentSubscription(t.Context(), stream, group, esdb.PersistentStreamSubscriptionOptions{
				StartFrom: esdb.Start{},
				Settings: settings(func(st *esdb.PersistentSubscriptionSettings) {
					st.CheckpointLowerBound, st.CheckpointUpperBound, st.ReadBatchSize = 1, 7, 10
				}),
			}))
		}
		if round < rounds {
			appendN(t, node.client, stream, total, perRound)
			total += perRound
		}
		mu.Lock()
		roundAcks, killAt = 0, -1
		if round < rounds {
			killAt = 1 + rng.IntN(perRound)
		}
		mu.Unlock()
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Add(2)
		go consume(ctx, node.client, &wg)
		go consume(ctx, node.client, &wg)
		if round < rounds {
			// Kill after a random number of acks, while the consumers ack.
			select {
			case <-killNow:
			case <-time.After(waitFor):
				t.Fatalf("round %d: consumers stalled before %d acks", round, killAt)
			}
			_ = node.cmd.Process.Signal(syscall.SIGKILL)
			_ = node.cmd.Wait()
		} else {
			// Poll (no event to wait on) until all are acked or the
			// deadline passes; the missing ones are reported below.
			for deadline := time.Now().Add(waitFor); !allAcked() && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
		}
		// The consumers must be gone before the client closes: client
		// v4.2.0 answers an Unavailable error by sending on the client's
		// channel, which panics once Close has closed it.
		cancel()
		wg.Wait()
		node.kill()
	}

	mu.Lock()
	defer mu.Unlock()
	var missing []uint64
	dups := 0
	for i := range uint64(total) {
		if acks[i] == 0 {
			missing = append(missing, i)
		}
		if acks[i] > 1 {
			dups += acks[i] - 1
		}
	}
	assert.Empty(t, missing, "events never acked (skipped)")
	t.Logf("%d events, %d SIGKILLs, %d deliveries, %d events acked more than once (%d extra acks)", total, rounds, deliveries, countDup(acks), dups)
}

func countDup(m map[uint64]int) int {
	n := 0
	for _, v := range m {
		if v > 1 {
			n++
		}
	}
	return n
}
