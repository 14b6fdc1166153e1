// Package eventlog is the embedded EventStoreDB node's durable event log: an
// append-only sequence of records (events, metadata events, tombstones) with
// per-stream revisions, EventStoreDB's optimistic-concurrency and idempotency
// rules, soft and hard deletes, and read-time stream metadata ($maxCount,
// $maxAge, $tb). Like EventStoreDB's transaction file, the records live in
// fixed-size, preallocated chunk files; an index in Pebble maps streams and
// revisions to them.
//
// # Contract
//
// Append, Delete and Tombstone return only after their records are synced
// to disk (fdatasync of the chunk file). Writes are group commits without a
// writer goroutine: the caller that finds the log idle becomes the leader;
// it takes its own request and up to Options.MaxBatch-1 queued ones, decides
// each in order against the current stream states (earlier requests of the
// same group are visible to later ones), writes all their records with one
// write and one fdatasync, writes their index entries to Pebble (no sync;
// after the fdatasync, or, for groups of 16 records or more, while a helper
// goroutine runs it), publishes the new head and only then answers the
// requests. Callers that
// arrive during a commit queue; when the leader's own request is answered
// it hands the lead to the oldest of them, which commits everything queued
// as the next group. A lone writer thus pays one write and one sync on its
// own goroutine. Readers never return a record whose position is above the
// published head, so they only ever see durable data. A request whose
// context is cancelled before a leader takes it is not written and returns
// ctx.Err(); once taken it completes. If a write or sync fails, the log
// takes no more writes (every later append returns that error): whether the
// group reached the disk is unknown until Open recovers it.
//
// Positions start at 1 and grow by one per record (commit == prepare).
// Revisions start at 0 per stream and are dense; a tombstone has revision
// TombstoneRevision. Record.Created is taken once per group commit from
// Options.Now, in UTC.
//
// # Files
//
// A data directory holds the chunk files "chunk-000000", "chunk-000001", ...
// (dense numbers) and the Pebble index in the subdirectory "index". A
// directory written by the earlier layout (events in Pebble, Pebble's files
// directly in the data directory) is refused with ErrOldLayout.
//
// # Chunk files
//
// All integers in chunk files are little-endian. A chunk file starts with a
// 4096-byte header:
//
//	magic    8 bytes "ESLOGCHK"
//	version  u32 (= 1)
//	number   u32 (the n of its name)
//	size     u64 (the file's full size, header included; Options.ChunkSize,
//	             or more for a chunk made for one larger record)
//	crc      u32 CRC-32C (Castagnoli) of the 24 bytes before it
//	zeros up to 4096
//
// followed by record frames, back to back from offset 4096, then zeros to
// the end of the file. A frame that does not fit in the rest of a chunk goes
// to the start of the next chunk; the rest stays zero. A chunk is written
// whole before the writer uses it: header, then zeros to its full size,
// synced, under a temporary name, then renamed into place and its directory
// synced. So the fdatasync of an append writes data blocks only: no file
// size, no block allocation (an fallocate'd but unwritten extent would
// still need its metadata converted on the first write). When the writer
// passes the middle of a chunk, a goroutine prepares the next one; the
// switch then costs a rename. A new log's first chunk is at most 4 MiB.
//
// A frame is:
//
//	magic    u8  0xA5
//	length   u32 of the payload (> 0)
//	crc      u32 CRC-32C of length, position, first, rest and the payload
//	position u64 the record's log position
//	first    u32 records of the same group commit before this one
//	rest     u32 records of the same group commit after this one
//	payload  length bytes: the record (below)
//	end      u8  0x5A
//
// first and rest tie the frames of one group commit together: a group is
// complete when the frame with rest 0 is there. The payload (record version
// 1) is:
//
//	version  u8 (= 1)
//	flags    u8 (bit 0: IsJSON; other bits must be zero)
//	revision uvarint
//	id       16 bytes (RFC 4122 byte order)
//	created  varint (Unix nanoseconds, UTC)
//	stream   uvarint length + bytes
//	type     uvarint length + bytes
//	data     uvarint length + bytes
//	metadata uvarint length + bytes
//
// decodeRecord checks every length against the remaining bytes, rejects
// unknown versions, unknown flag bits and trailing bytes, and returns
// ErrCorrupt instead of panicking. Every read checks the frame's magic bytes,
// checksum and position and fails with ErrCorrupt on a mismatch.
//
// # Recovery: torn tail versus corruption
//
// Open scans from the index's progress (see below) to the end of the log,
// and always the whole last chunk, checking every frame. The log ends at the
// first place where a frame should be and is not. Because a group is only
// written after the previous group's sync returned, everything after the
// last complete, synced group can only be the one group whose sync had not
// returned (never acknowledged), in any state: missing, partly there,
// sectors of it there and others still zero. So at the first invalid frame
// (bad magic, length, checksum, end byte, position, or a group cut short
// before its rest-0 frame):
//
//   - if a valid frame of a later group exists anywhere after it, the bad
//     frame was synced: Open fails with ErrCorrupt (never a silent
//     truncation);
//   - if everything after it is zero and the previous group is complete, it
//     is the clean end of the log;
//   - otherwise the bad frame must show what an interrupted write leaves: a
//     512-byte sector (or the part of one it covers) still all zeros (frames
//     begin and end with non-zero bytes, so an intact frame has no such
//     sector unless its data holds 512 zero bytes). Then it is a torn tail:
//     the whole group it belongs to is dropped (a multi-event append is
//     never half present), its bytes are overwritten with zeros and synced,
//     and writing resumes where the group began. Without that evidence
//     Open fails with ErrCorrupt.
//
// A chunk file shorter than its header says (truncated) reads as zeros past
// its end; a truncated last chunk therefore recovers as a torn tail. Damage
// in older chunks is found by reads (ErrCorrupt), not by Open.
//
// # Index (Pebble)
//
// Keys are big-endian so that byte order is numeric order:
//
//	's' num:u64 rev:u64  -> pos:u64 loc:u64  (stream index; not for tombstones)
//	'i' num:u64 id:16    -> rev:u64          (exact per-stream idempotency index)
//	'h' stream           -> head value       (one per stream ever written; also
//	                                          the stream-name index for Streams)
//	'p' pos:u64          -> loc:u64          (every 32nd position: 1, 33, 65, ...)
//	"x-indexed"          -> pos:u64 loc:u64  (progress: last indexed position and
//	                                          the location just past its frame)
//	"x-format"           -> u64              (the version of these keys: 2)
//
// A stream's number (num) is the position of its first record: unique, and
// larger for every newer stream, so the 's' and 'i' keys of the streams
// being created sort after all others and Pebble's compactions mostly move
// them instead of merging them into the existing levels (with the stream's
// name in the key, format 1, new streams landed all over the key space).
// A loc is chunk number << 32 | offset in the chunk. A head value is 25
// bytes: last revision + 1 (u64, 0 = no events), a flag byte (bit 0:
// tombstoned), the position (u64) of the newest record that changed the
// head and the stream's number (u64). An index without "x-format" 2 (written
// by an earlier version) is dropped on Open and rebuilt from the chunk
// files. Readers that find a head newer than the published head wait for it
// to become durable before using it. $all reads start at the 'p' entry at
// or below their position (the 'p' entries are also kept in memory, 8 bytes
// per 32 records) and read frames sequentially from there. Stream reads find
// each record through its 's' entry and read 64 KiB blocks of the chunk around
// it, so that the neighbouring frames of a run appended together cost one read.
//
// The index runs without Pebble's WAL: the chunk files are the source of
// truth. Each group commit writes its entries and the progress key in one
// Pebble batch; Pebble makes what it flushed durable as a prefix of these
// batches, so after a crash the progress key tells where the durable index
// ends, and Open re-indexes the chunk files from there (only complete
// groups). A group's entries go into its batch in key order (stably: of
// two entries with one key, the later wins), so that runs of neighbouring
// keys, such as the revisions of a batch appended to one stream, are
// inserted into Pebble's memtable each next to the one before instead of
// each searched from the top. Close flushes the index. A large group's batch is committed
// while its fdatasync runs, so a memtable flush at that moment followed by
// a crash can leave the index covering a group that is not on disk. Such a
// group ends in the last chunk and may begin several chunks earlier (a
// group takes as many chunks as its frames need; the writer moves on to a
// new chunk only inside a group), so Open verifies the last chunk from the
// start of the group its first frame belongs to, walking back through the
// chunks that group spans. Every chunk but the last starts with a frame,
// so one that does not (its first block lost) means the index may cover
// lost records. If the index refers to records the chunks do not hold
// (those cases, or a damaged or truncated chunk), Open drops the index and
// rebuilds it from the first chunk.
//
// # Caches
//
// The writer keeps the heads of the streams it touched (and, for metastreams,
// the parsed metadata of their last event) in memory, loaded lazily from the
// 'h' keys, so that appends to hot streams do not read Pebble. The cache is
// bounded: when it holds more than maxCachedStreams entries it is dropped as
// a whole between two group commits and reloaded on demand. Readers do not
// share it; they read the 'h' keys.
//
// Pebble's block cache holds the index's blocks (entries, index and bloom
// filter blocks): Options.IndexCacheSize, 32 MiB by default. Pebble charges
// the memtables it holds to that cache, so the log gives it two memtables
// (2 x 32 MiB) on top; the resident cost is the cache plus the memtables.
//
// # Stream metadata
//
// The effective metadata of stream X is the last event of "$$X" if that event
// is JSON and a JSON object whose known keys ($maxAge, $maxCount, $tb) are
// positive (for $tb: non-negative) integers; anything else means no metadata.
// Metastreams have a fixed $maxCount of 1. These rules are applied when
// reading a stream, never to ReadAll. Delete and Tombstone of a metastream are
// rejected with ErrInvalid.
package eventlog
