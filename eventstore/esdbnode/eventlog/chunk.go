package eventlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Chunk files and record frames; the format is in doc.go.

const (
	// DefaultChunkSize is the size of a chunk file when Options.ChunkSize is 0.
	DefaultChunkSize = 64 << 20

	chunkHeaderSize = 4096 // the data of a chunk starts 4 KiB-aligned
	chunkMagic      = "ESLOGCHK"
	chunkVersion    = 1
	chunkPrefix     = "chunk-"
	chunkTmpSuffix  = ".tmp"
	minChunkSize    = chunkHeaderSize + 4096

	frameHeaderSize = 25 // magic, len, crc, pos, first, rest
	frameTrailer    = 1
	frameOverhead   = frameHeaderSize + frameTrailer
	frameMagic      = 0xA5
	frameEnd        = 0x5A
	maxPayload      = 1 << 30

	// firstChunkSize caps the size of a new log's first chunk, so that a
	// new (often small) log does not write DefaultChunkSize of zeros.
	firstChunkSize = 4 << 20
	fillStep       = 1 << 20 // zeros written (and synced) at a time
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// loc is the location of a frame: chunk number << 32 | offset in the chunk.
type loc uint64

func makeLoc(chunk uint32, off int64) loc { return loc(uint64(chunk)<<32 | uint64(off)) }
func (l loc) chunk() uint32               { return uint32(l >> 32) }
func (l loc) off() int64                  { return int64(uint32(l)) }

// chunkName is the file name of chunk n.
func chunkName(n uint32) string { return fmt.Sprintf("%s%06d", chunkPrefix, n) }

// parseChunkName returns n for "chunk-n"; ok false for any other name.
func parseChunkName(name string) (uint32, bool) {
	s, ok := strings.CutPrefix(name, chunkPrefix)
	if !ok || len(s) < 6 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// chunkHeader is the first block of a chunk file.
type chunkHeader struct {
	number uint32
	size   int64 // file size including the header
}

func (h chunkHeader) encode() []byte {
	b := make([]byte, chunkHeaderSize)
	copy(b, chunkMagic)
	binary.LittleEndian.PutUint32(b[8:], chunkVersion)
	binary.LittleEndian.PutUint32(b[12:], h.number)
	binary.LittleEndian.PutUint64(b[16:], uint64(h.size))
	binary.LittleEndian.PutUint32(b[24:], crc32.Checksum(b[:24], castagnoli))
	return b
}

func decodeChunkHeader(b []byte) (chunkHeader, error) {
	if len(b) < 28 || string(b[:8]) != chunkMagic {
		return chunkHeader{}, fmt.Errorf("%w: not a chunk header", ErrCorrupt)
	}
	if crc32.Checksum(b[:24], castagnoli) != binary.LittleEndian.Uint32(b[24:]) {
		return chunkHeader{}, fmt.Errorf("%w: chunk header checksum", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != chunkVersion {
		return chunkHeader{}, fmt.Errorf("%w: chunk version %d", ErrCorrupt, v)
	}
	h := chunkHeader{number: binary.LittleEndian.Uint32(b[12:]), size: int64(binary.LittleEndian.Uint64(b[16:]))}
	if h.size < minChunkSize || h.size > 1<<32-1 {
		return chunkHeader{}, fmt.Errorf("%w: chunk size %d", ErrCorrupt, h.size)
	}
	return h, nil
}

// chunk is one open chunk file. Reads use ReadAt and may run concurrently
// with the writer's WriteAt on the same file (at other offsets).
type chunk struct {
	chunkHeader
	f        vfs.File
	fileSize int64 // at open (recovery reads past it as zeros)
}

// writeData writes b at off (the writer's records).
func (c *chunk) writeData(b []byte, off int64) error {
	if _, err := c.f.WriteAt(b, off); err != nil {
		return fmt.Errorf("eventlog: write %s at %d: %w", chunkName(c.number), off, err)
	}
	return nil
}

// readAt reads len(b) bytes at off; bytes past the end of the file (a
// truncated chunk) read as zeros.
func (c *chunk) readAt(b []byte, off int64) error {
	n, err := c.f.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("eventlog: read %s at %d: %w", chunkName(c.number), off, err)
	}
	clear(b[n:])
	return nil
}

// readAll reads the chunk up to its file size at open (or its size, if
// smaller): recovery treats everything past it as zeros.
func (c *chunk) readAll() ([]byte, error) {
	data := make([]byte, min(c.fileSize, c.size))
	return data, c.readAt(data, 0)
}

// createChunk makes chunk n of the given size: prepareChunk then
// installChunk.
func createChunk(fs vfs.FS, dir string, n uint32, size int64) (*chunk, error) {
	if err := prepareChunk(fs, dir, n, size, nil); err != nil {
		return nil, err
	}
	return installChunk(fs, dir, n)
}

// prepareChunk writes chunk n under a temporary name: its header, then
// zeros to its full size, synced a step at a time (so that preparing a
// chunk in the background never leaves much dirty data for anyone's sync).
// A chunk is thus preallocated by writing: a later fdatasync of data
// written into it has no file size and no block allocation to write (an
// fallocate'd extent would still need converting on its first write).
// quit, if closed, abandons the preparation (and removes the file).
func prepareChunk(fs vfs.FS, dir string, n uint32, size int64, quit <-chan struct{}) error {
	h := chunkHeader{number: n, size: size}
	tmp := fs.PathJoin(dir, chunkName(n)+chunkTmpSuffix)
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("eventlog: create chunk: %w", err)
	}
	fail := func(err error) error {
		_ = f.Close()
		_ = fs.Remove(tmp)
		return fmt.Errorf("eventlog: create %s: %w", chunkName(n), err)
	}
	if _, err := f.Write(h.encode()); err != nil {
		return fail(err)
	}
	zeros := make([]byte, min(fillStep, size-chunkHeaderSize))
	for off := int64(chunkHeaderSize); off < size; off += fillStep {
		select {
		case <-quit:
			return fail(ErrClosed)
		default:
		}
		if _, err := f.Write(zeros[:min(fillStep, size-off)]); err != nil {
			return fail(err)
		}
		if err := f.SyncData(); err != nil {
			return fail(err)
		}
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	return nil
}

// installChunk renames a prepared chunk into place, syncs the directory
// and opens it: a chunk file exists complete or not at all.
func installChunk(fs vfs.FS, dir string, n uint32) (*chunk, error) {
	final := fs.PathJoin(dir, chunkName(n))
	if err := fs.Rename(final+chunkTmpSuffix, final); err != nil {
		return nil, fmt.Errorf("eventlog: install %s: %w", chunkName(n), err)
	}
	if err := syncDir(fs, dir); err != nil {
		return nil, err
	}
	return openChunk(fs, dir, n)
}

// openChunk opens chunk n for reading and writing and checks its header.
func openChunk(fs vfs.FS, dir string, n uint32) (*chunk, error) {
	f, err := fs.OpenReadWrite(fs.PathJoin(dir, chunkName(n)), vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("eventlog: open %s: %w", chunkName(n), err)
	}
	b := make([]byte, 28)
	if _, err := f.ReadAt(b, 0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("eventlog: %s: %w: short header (%v)", chunkName(n), ErrCorrupt, err)
	}
	h, err := decodeChunkHeader(b)
	if err == nil && h.number != n {
		err = fmt.Errorf("%w: header says chunk %d", ErrCorrupt, h.number)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("eventlog: %s: %w", chunkName(n), err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("eventlog: stat %s: %w", chunkName(n), err)
	}
	return &chunk{chunkHeader: h, f: f, fileSize: st.Size()}, nil
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("eventlog: open dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("eventlog: sync dir: %w", err)
	}
	return nil
}

// listChunks returns the numbers of the chunk files in dir, ascending, and
// removes leftover temporary files of an interrupted createChunk.
func listChunks(fs vfs.FS, dir string) ([]uint32, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("eventlog: list %s: %w", dir, err)
	}
	var out []uint32
	for _, name := range names {
		if strings.HasPrefix(name, chunkPrefix) && strings.HasSuffix(name, chunkTmpSuffix) {
			if err := fs.Remove(fs.PathJoin(dir, name)); err != nil {
				return nil, fmt.Errorf("eventlog: remove %s: %w", name, err)
			}
			continue
		}
		if n, ok := parseChunkName(name); ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	for i, n := range out {
		if n != uint32(i) {
			return nil, fmt.Errorf("eventlog: %w: chunk %d missing (found %s)", ErrCorrupt, i, chunkName(n))
		}
	}
	return out, nil
}

// frame is a decoded frame header.
type frame struct {
	n     int    // payload length
	crc   uint32 // stored checksum
	pos   uint64
	first uint32 // records of the same group before this one
	rest  uint32 // records of the same group after this one
}

func (f frame) size() int64        { return int64(f.n) + frameOverhead }
func (f frame) groupFirst() uint64 { return f.pos - uint64(f.first) }

// appendFrameHeader appends a frame header with a zero checksum; sealFrame
// fills in rest and the checksum once the payload follows it.
func appendFrameHeader(dst []byte, payload int, pos uint64, first uint32) []byte {
	dst = append(dst, frameMagic)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(payload))
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, pos)
	dst = binary.LittleEndian.AppendUint32(dst, first)
	return binary.LittleEndian.AppendUint32(dst, 0)
}

// sealFrame sets rest and computes the checksum of the frame at the start
// of b (header, payload and trailer present).
func sealFrame(b []byte, rest uint32) {
	binary.LittleEndian.PutUint32(b[21:], rest)
	n := int(binary.LittleEndian.Uint32(b[1:]))
	binary.LittleEndian.PutUint32(b[5:], frameChecksum(b[:frameHeaderSize], b[frameHeaderSize:frameHeaderSize+n]))
}

// frameChecksum is the CRC-32C of the header without its checksum field,
// then the payload.
func frameChecksum(hdr, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, hdr[1:5])
	c = crc32.Update(c, castagnoli, hdr[9:frameHeaderSize])
	return crc32.Update(c, castagnoli, payload)
}

// parseFrameHeader decodes a frame header; ok false if b does not start with
// the frame magic or the length cannot fit in limit bytes.
func parseFrameHeader(b []byte, limit int64) (frame, bool) {
	if len(b) < frameHeaderSize || b[0] != frameMagic {
		return frame{}, false
	}
	f := frame{
		n:     int(binary.LittleEndian.Uint32(b[1:])),
		crc:   binary.LittleEndian.Uint32(b[5:]),
		pos:   binary.LittleEndian.Uint64(b[9:]),
		first: binary.LittleEndian.Uint32(b[17:]),
		rest:  binary.LittleEndian.Uint32(b[21:]),
	}
	if f.n <= 0 || f.n > maxPayload || f.size() > limit || f.pos == 0 || uint64(f.first) >= f.pos {
		return frame{}, false
	}
	return f, true
}

// checkFrame verifies the trailer and checksum of a frame whose header and
// payload are in b (b[:f.size()]).
func checkFrame(b []byte, f frame) bool {
	end := frameHeaderSize + f.n
	return len(b) >= end+frameTrailer && b[end] == frameEnd &&
		frameChecksum(b[:frameHeaderSize], b[frameHeaderSize:end]) == f.crc
}

// frameSizeFor is the size of a frame carrying payload bytes.
func frameSizeFor(payload int) int64 { return int64(payload) + frameOverhead }
