package eventlog

import "sync"

// filler zero-fills the current chunk ahead of the writer on its own
// goroutine, so that the writer's fdatasync finds the blocks it writes
// already allocated and their size already on disk, and a group commit
// does not pay for the zeros.
type filler struct {
	mu      sync.Mutex
	c       *chunk
	upTo    int64
	err     error // first failure; the writer then writes past the zeros
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	started bool
	once    sync.Once
}

func newFiller() *filler {
	return &filler{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// kick asks for c to be filled up to upTo (starting the goroutine on first
// use).
func (f *filler) kick(c *chunk, upTo int64) {
	f.mu.Lock()
	f.c, f.upTo = c, upTo
	if !f.started {
		f.started = true
		go f.run()
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *filler) run() {
	defer close(f.done)
	zeros := make([]byte, fillStep)
	for {
		select {
		case <-f.quit:
			return
		case <-f.wake:
		}
		for {
			f.mu.Lock()
			c, upTo, failed := f.c, f.upTo, f.err != nil
			f.mu.Unlock()
			if failed {
				break
			}
			more, err := c.fillStepAhead(zeros, upTo)
			if err != nil {
				f.mu.Lock()
				f.err = err
				f.mu.Unlock()
			}
			if !more {
				break
			}
			select {
			case <-f.quit:
				return
			default:
			}
		}
	}
}

// stop ends the goroutine and waits for it.
func (f *filler) stop() {
	f.once.Do(func() {
		close(f.quit)
		f.mu.Lock()
		started := f.started
		f.started = true // no start after stop
		f.mu.Unlock()
		if started {
			<-f.done
		}
	})
}
