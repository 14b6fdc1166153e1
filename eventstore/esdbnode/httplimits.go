package esdbnode

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// minBodyRate makes every HTTP/1.1 request body arrive at rate bytes per
// second on average once grace has passed (Kestrel's
// MinRequestBodyDataRate): before each read of the body the connection's
// read deadline is set to start + grace + read/rate, so a client that sends
// headers and then nothing, or trickles, is cut off and its connection and
// goroutine freed. A handler that does not read the body is covered too: the
// server's discard of the unread body after the handler runs under the same
// deadline.
func minBodyRate(next http.Handler, rate int, grace time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ProtoMajor != 1 {
			next.ServeHTTP(w, r)
			return
		}
		rr := &rateReader{
			body:  r.Body,
			rc:    http.NewResponseController(w),
			start: time.Now(),
			rate:  rate,
			grace: grace,
		}
		rr.arm()
		r.Body = rr
		next.ServeHTTP(w, r)
	})
}

// rateReader is a request body under minBodyRate.
type rateReader struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	rate  int
	grace time.Duration
	read  int64
	done  bool
}

// arm sets the read deadline the bytes read so far allow.
func (r *rateReader) arm() {
	allowed := r.grace + time.Duration(float64(r.read)/float64(r.rate)*float64(time.Second))
	_ = r.rc.SetReadDeadline(r.start.Add(allowed))
}

func (r *rateReader) Read(p []byte) (int, error) {
	if r.done {
		return r.body.Read(p)
	}
	n, err := r.body.Read(p)
	r.read += int64(n)
	if errors.Is(err, io.EOF) {
		// The body is in: lift the deadline, or the server's wait for the
		// next request (or its check for a client gone away) would trip on it.
		r.done = true
		_ = r.rc.SetReadDeadline(time.Time{})
		return n, err
	}
	r.arm()
	return n, err
}

func (r *rateReader) Close() error { return r.body.Close() }
