package contract

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/require"
)

// TestKeepalive pins docs/protocol.md, section 1, "Keepalive" (and section 6,
// item 1): the node must tolerate the client's keepalive pings, which it sends
// every 10 s even without streams. grpc-go's default server policy answers the
// third early ping with GOAWAY "too_many_pings", which kills every idle
// subscription after about 30 s.
//
// The official client cannot ping faster than every 10 s (grpc-go raises a
// smaller KeepAliveInterval to 10 s), so the enforcement itself is probed
// with raw HTTP/2 frames; the idle subscription through the client is kept as
// the end-to-end view. Waiting on the clock is the behaviour under test here.
func TestKeepalive(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	cfg, err := esdb.ParseConnectionString(tg.connStr)
	require.NoError(t, err)

	t.Run("idle subscription with a 1 s keepalive setting stays alive", func(t *testing.T) {
		t.Parallel()
		c := dial(t, withParams(tg.connStr, "keepAliveInterval=1000&keepAliveTimeout=1000"))
		s := streamName("idle")
		r := subscribeStream(t, c, s, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
		r.untilCaughtUp(t, wait)
		idle := time.NewTimer(6 * time.Second)
		select {
		case ev := <-r.ch:
			t.Fatalf("unexpected message while idle: %+v", ev)
		case <-idle.C:
		}
		ev := jsonEvent("AfterIdle", `{}`)
		appendOK(t, tg.client, s, esdb.NoStream{}, ev)
		require.Equal(t, ev.EventID, r.nextEvent(t, wait).OriginalEvent().EventID)
	})

	t.Run("pings without streams are not punished", func(t *testing.T) {
		t.Parallel()
		if !cfg.DisableTLS || len(cfg.GossipSeeds) > 0 {
			t.Skip("the raw HTTP/2 probe needs a single insecure node")
		}
		// Four pings 6 s apart: a server enforcing grpc-go's default policy
		// (no pings without streams, MinTime 5 min) counts three strikes and
		// sends GOAWAY; the node (MinTime ≤ 6 s, PermitWithoutStream) must
		// acknowledge all of them and keep the connection.
		const pings, every = 4, 6 * time.Second
		h := dialH2(t, cfg.Address)
		for i := range pings {
			if i > 0 {
				select {
				case <-time.After(every):
				case ga := <-h.goaway:
					t.Fatalf("GOAWAY while idle: %s", ga)
				}
			}
			h.ping(t, uint64(i))
		}
		// A last immediate ping is one strike at most for a valid server; it
		// flushes a GOAWAY queued behind the fourth ping's ack.
		h.ping(t, 99)
	})
}

// h2conn is a minimal HTTP/2 client connection: enough to exchange SETTINGS
// and PING frames with the node and notice a GOAWAY.
type h2conn struct {
	conn   net.Conn
	wmu    sync.Mutex
	acks   chan uint64
	goaway chan string
}

const (
	frameSettings = 0x4
	framePing     = 0x6
	frameGoaway   = 0x7
	flagAck       = 0x1
)

func dialH2(t *testing.T, addr string) *h2conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	h := &h2conn{conn: conn, acks: make(chan uint64, 16), goaway: make(chan string, 1)}
	done := make(chan struct{})
	t.Cleanup(func() { _ = conn.Close(); <-done })
	_, err = io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	require.NoError(t, err)
	require.NoError(t, h.write(frameSettings, 0, nil))
	go func() {
		defer close(done)
		h.readLoop()
	}()
	return h
}

func (h *h2conn) write(typ, flags byte, payload []byte) error {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	hdr := make([]byte, 9, 9+len(payload))
	hdr[0], hdr[1], hdr[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	hdr[3], hdr[4] = typ, flags
	_, err := h.conn.Write(append(hdr, payload...))
	return err
}

func (h *h2conn) readLoop() {
	br := bufio.NewReader(h.conn)
	hdr := make([]byte, 9)
	for {
		if _, err := io.ReadFull(br, hdr); err != nil {
			return
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		typ, flags := hdr[3], hdr[4]
		switch {
		case typ == frameSettings && flags&flagAck == 0:
			_ = h.write(frameSettings, flagAck, nil)
		case typ == framePing && flags&flagAck != 0 && n == 8:
			h.acks <- binary.BigEndian.Uint64(payload)
		case typ == frameGoaway && n >= 8:
			code := binary.BigEndian.Uint32(payload[4:8])
			select {
			case h.goaway <- fmt.Sprintf("code %d %q", code, payload[8:]):
			default:
			}
		}
	}
}

// ping sends a PING and waits for its acknowledgement.
func (h *h2conn) ping(t *testing.T, data uint64) {
	t.Helper()
	payload := binary.BigEndian.AppendUint64(nil, data)
	require.NoError(t, h.write(framePing, 0, payload), "ping %d", data)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-h.acks:
			if got == data {
				return
			}
		case ga := <-h.goaway:
			t.Fatalf("GOAWAY after ping %d: %s", data, ga)
		case <-deadline:
			t.Fatalf("no ack for ping %d", data)
		}
	}
}
