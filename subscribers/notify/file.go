package notify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FileTransport stores every message as <dir>/<name>.eml, where name is the Message-ID with
// every byte outside [A-Za-z0-9._@-] replaced by '_'. A file appears complete or not at all:
// it is written to a temporary file in dir, fsynced, renamed into place, and the directory is
// fsynced. Sending the same Message-ID again replaces the same file, so the duplicate a crash
// can cause is absorbed here. It is safe for concurrent use.
type FileTransport struct {
	dir string
}

var _ Transport = (*FileTransport)(nil)

// NewFileTransport returns a transport writing into dir, created (with its parents) when
// missing.
func NewFileTransport(dir string) (*FileTransport, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty mail directory", ErrInvalidConfig)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: mail directory: %v", ErrInvalidConfig, err)
	}
	return &FileTransport{dir: dir}, nil
}

// Dir returns the directory the messages are written to.
func (t *FileTransport) Dir() string { return t.dir }

// FileName is the base name of the file holding the message with the given Message-ID.
func FileName(messageID string) string {
	var b strings.Builder
	for _, r := range messageID {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '_', r == '@', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String() + ".eml"
}

// Send writes m atomically. A message that cannot be built fails permanently; a failing
// write (full disk, say) is temporary.
func (t *FileTransport) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := Encode(m)
	if err != nil {
		return Classify(err)
	}
	if err := t.write(FileName(m.ID), data); err != nil {
		return fmt.Errorf("%w: %v", ErrSend, err)
	}
	return nil
}

func (t *FileTransport) write(name string, data []byte) (err error) {
	f, err := os.CreateTemp(t.dir, ".tmp-*.eml")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(t.dir, name)); err != nil {
		return err
	}
	return syncDir(t.dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
