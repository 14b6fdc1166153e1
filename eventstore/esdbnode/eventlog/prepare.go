package eventlog

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// preparer writes the next chunk file on its own goroutine while the writer
// fills the current one, so that switching chunks costs a rename, not
// DefaultChunkSize of zeros. Only the holder of Log.lead calls its methods.
type preparer struct {
	fs   vfs.FS
	dir  string
	quit chan struct{}

	n       uint32
	size    int64
	running bool
	done    chan error
}

func newPreparer(fs vfs.FS, dir string) *preparer {
	return &preparer{fs: fs, dir: dir, quit: make(chan struct{})}
}

// start prepares chunk n of size bytes, unless it is already under way.
func (p *preparer) start(n uint32, size int64) {
	if p.running {
		return
	}
	p.n, p.size, p.running = n, size, true
	p.done = make(chan error, 1)
	go func() { p.done <- prepareChunk(p.fs, p.dir, n, size, p.quit) }()
}

// take returns chunk n with room for at least size bytes: the prepared one
// if it is that chunk and large enough, else one made now.
func (p *preparer) take(n uint32, size int64) (*chunk, error) {
	if p.running {
		p.running = false
		err := <-p.done
		if err == nil && p.n == n && p.size >= size {
			return installChunk(p.fs, p.dir, n)
		}
		if err == nil {
			_ = p.fs.Remove(p.fs.PathJoin(p.dir, chunkName(p.n)+chunkTmpSuffix))
		}
	}
	c, err := createChunk(p.fs, p.dir, n, size)
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	return c, nil
}

// stop abandons a preparation under way and waits for it (on Close).
func (p *preparer) stop() {
	close(p.quit)
	if p.running {
		p.running = false
		if err := <-p.done; err == nil {
			_ = p.fs.Remove(p.fs.PathJoin(p.dir, chunkName(p.n)+chunkTmpSuffix))
		}
	}
}
