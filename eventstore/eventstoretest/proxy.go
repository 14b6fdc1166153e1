// Package eventstoretest holds test tools for code that talks to EventStoreDB over the
// network. Its contract: Proxy is a real TCP proxy on loopback that forwards bytes both ways
// unchanged until told to fail, and then fails the way a dying node or network does, so that
// the official client's own error paths are exercised, not imitated.
package eventstoretest

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections from a loopback port to a target address. Between its
// listener and the target it can cut the connections (the client sees EOF or a reset), drop
// the target's replies silently (the client waits), or refuse new connections.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	trigger func() bool // armed: checked before forwarding each reply chunk
	silent  bool        // on trigger: drop replies and keep the connection open
	fired   int
	wg      sync.WaitGroup
}

// NewProxy listens on 127.0.0.1:0 and forwards to target until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("eventstoretest: listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// ConnectionString is an esdb:// connection string through the proxy, without TLS.
func (p *Proxy) ConnectionString() string { return "esdb://" + p.Addr() + "?tls=false" }

// CutRepliesWhen arms the proxy: before forwarding each chunk of bytes from the target it
// calls cond, and the first time cond holds it closes both sides of that connection (with a
// reset towards the client) instead of forwarding the chunk. It then disarms. cond is called
// from the proxy's goroutines.
func (p *Proxy) CutRepliesWhen(cond func() bool) { p.arm(cond, false) }

// DropRepliesWhen is CutRepliesWhen, except that the connection stays open: from the chunk
// on which cond first holds, every byte from the target on that connection is discarded, so
// the client waits for an answer that never comes.
func (p *Proxy) DropRepliesWhen(cond func() bool) { p.arm(cond, true) }

func (p *Proxy) arm(cond func() bool, silent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trigger, p.silent = cond, silent
}

// Fired is the number of times an armed condition held.
func (p *Proxy) Fired() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fired
}

// Refuse closes the listener and every open connection: from now on a client's connection
// attempts are refused. It is idempotent.
func (p *Proxy) Refuse() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
}

// Close is Refuse and waits for the proxy's goroutines to end.
func (p *Proxy) Close() {
	p.Refuse()
	p.wg.Wait()
}

func (p *Proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.track(client, server)
		requests := make(chan struct{})
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			defer close(requests)
			_, _ = io.Copy(server, client)
			_ = server.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.replies(client, server)
			_ = client.Close()
			<-requests
			p.untrack(client, server)
		}()
	}
}

// replies forwards server -> client, checking the armed condition before each chunk.
func (p *Proxy) replies(client, server net.Conn) {
	buf := make([]byte, 32<<10)
	dropping := false
	for {
		n, err := server.Read(buf)
		if n > 0 && !dropping {
			switch p.check() {
			case actCut:
				if tc, ok := client.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // a reset, as when the peer's process dies
				}
				_ = client.Close()
				_ = server.Close()
				return
			case actDrop:
				dropping = true
			default:
				if _, werr := client.Write(buf[:n]); werr != nil {
					_ = server.Close()
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = server.Close()
			}
			return
		}
	}
}

type action int

const (
	actForward action = iota
	actCut
	actDrop
)

func (p *Proxy) check() action {
	p.mu.Lock()
	cond, silent := p.trigger, p.silent
	p.mu.Unlock()
	if cond == nil || !cond() {
		return actForward
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.trigger == nil { // another connection fired first
		return actForward
	}
	p.trigger = nil
	p.fired++
	if silent {
		return actDrop
	}
	return actCut
}
