package esdbnode

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// http2Preface is what every HTTP/2 (and so every gRPC) connection starts with.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// acceptLoop accepts connections on the node's port and hands each one, once
// its first bytes are known, to gRPC or to the HTTP/1.1 server.
func (s *Server) acceptLoop() {
	var tempDelay time.Duration
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if s.baseCtx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (e.g. too many open files): back off like net/http.
			if tempDelay == 0 {
				tempDelay = 5 * time.Millisecond
			} else {
				tempDelay = min(2*tempDelay, time.Second)
			}
			s.cfg.Logger.Warn("esdbnode: accept", "err", err, "retry_in", tempDelay)
			t := time.NewTimer(tempDelay)
			select {
			case <-t.C:
			case <-s.baseCtx.Done():
				t.Stop()
				return
			}
			continue
		}
		tempDelay = 0
		if !s.conns.acquire() {
			s.refuse(conn)
			continue
		}
		conn = &countedConn{Conn: conn, release: s.conns.release}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.route(conn)
		}()
	}
}

// tooManyConnections is what a connection beyond Limits.MaxConnections
// reads before the node closes it: an HTTP/1.1 client sees a 503, a gRPC
// client a broken connection (Unavailable), and a person with curl the reason.
const tooManyConnections = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\n\r\ntoo many connections\n"

// refuseLogEvery bounds the warnings about refused connections, which a
// flood would otherwise turn into a log flood.
const refuseLogEvery = 10 * time.Second

// refuse answers a connection beyond the cap and closes it, without reading
// from it.
func (s *Server) refuse(conn net.Conn) {
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(conn, tooManyConnections)
	_ = conn.Close()
	n := s.conns.refused.Add(1)
	now := time.Now()
	last := s.conns.lastWarn.Load()
	if now.UnixNano()-last >= int64(refuseLogEvery) && s.conns.lastWarn.CompareAndSwap(last, now.UnixNano()) {
		s.cfg.Logger.Warn("esdbnode: connection limit reached; refusing connections",
			"max_connections", s.cfg.Limits.MaxConnections, "refused_total", n)
	}
}

// connCounter counts open connections against Limits.MaxConnections.
type connCounter struct {
	max      int64
	open     atomic.Int64
	refused  atomic.Int64
	lastWarn atomic.Int64 // unix nanoseconds of the last refusal warning
}

func (c *connCounter) acquire() bool {
	if c.open.Add(1) > c.max {
		c.open.Add(-1)
		return false
	}
	return true
}

func (c *connCounter) release() { c.open.Add(-1) }

// countedConn releases its place in the count when first closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// route reads as many bytes as it takes to tell an HTTP/2 preface from
// anything else, then passes the connection, bytes replayed, on.
func (s *Server) route(conn net.Conn) {
	// Close interrupts a connection that is still silent.
	stop := context.AfterFunc(s.baseCtx, func() { _ = conn.SetDeadline(time.Now()) })
	var (
		isH2 bool
		next net.Conn
		err  error
	)
	if s.tlsCfg != nil {
		isH2, next, err = s.handshake(conn)
	} else {
		var peeked []byte
		isH2, peeked, err = sniff(conn, time.Now().Add(s.cfg.Limits.PrefaceTimeout))
		next = &replayConn{Conn: conn, r: io.MultiReader(bytes.NewReader(peeked), conn)}
	}
	if !stop() {
		err = net.ErrClosed
	}
	if err != nil {
		_ = conn.Close()
		return
	}
	target := s.httpLn
	if isH2 {
		target = s.grpcLn
	}
	if !target.deliver(next) {
		_ = conn.Close()
	}
}

// handshake runs the TLS handshake of a secure node's connection within the
// preface timeout; ALPN "h2" makes it a gRPC connection.
func (s *Server) handshake(conn net.Conn) (isH2 bool, tc *tls.Conn, err error) {
	if err := conn.SetDeadline(time.Now().Add(s.cfg.Limits.PrefaceTimeout)); err != nil {
		return false, nil, err
	}
	tc = tls.Server(conn, s.tlsCfg)
	if err := tc.Handshake(); err != nil {
		s.cfg.Logger.Debug("esdbnode: TLS handshake failed", "remote", conn.RemoteAddr().String(), "err", err)
		return false, nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return false, nil, err
	}
	return tc.ConnectionState().NegotiatedProtocol == "h2", tc, nil
}

// sniff reads from conn until the bytes read either equal the HTTP/2 preface
// or stop being a prefix of it. It returns the bytes read.
func sniff(conn net.Conn, deadline time.Time) (isH2 bool, peeked []byte, err error) {
	if err := conn.SetReadDeadline(deadline); err != nil {
		return false, nil, err
	}
	buf := make([]byte, len(http2Preface))
	n := 0
	for n < len(buf) {
		m, err := conn.Read(buf[n:])
		n += m
		if !bytes.HasPrefix([]byte(http2Preface), buf[:n]) {
			break
		}
		if err != nil {
			if n > 0 && errors.Is(err, io.EOF) {
				break // a short request that closed its write side: let HTTP answer it
			}
			return false, nil, err
		}
	}
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return false, nil, err
	}
	return n == len(buf) && string(buf) == http2Preface, buf[:n], nil
}

// replayConn is a connection whose first reads return bytes already consumed.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// connListener is a net.Listener fed by the accept loop.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands conn to Accept; false if the listener is closed.
func (l *connListener) deliver(conn net.Conn) bool {
	select {
	case l.conns <- conn:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
