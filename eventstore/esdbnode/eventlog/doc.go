// Package eventlog is the embedded EventStoreDB node's durable event log: an
// append-only sequence of records (events, metadata events, tombstones) with
// per-stream revisions, EventStoreDB's optimistic-concurrency and idempotency
// rules, soft and hard deletes, and read-time stream metadata ($maxCount,
// $maxAge, $tb), stored in Pebble.
//
// # Contract
//
// Append, Delete and Tombstone return only after their records are synced
// to disk (pebble.Sync). One writer goroutine owns all mutations: it takes
// up to Options.MaxBatch pending requests, decides each in order against the
// current stream states (earlier requests of the same batch are visible to
// later ones), writes all of them into one Pebble batch, commits it with a
// single sync (group commit), publishes the new head and only then answers the
// requests. Readers never return a record whose position is above the
// published head, so they only ever see durable data. A request whose context
// is cancelled before the writer picks it up is not written and returns
// ctx.Err(); once picked up it completes.
//
// Positions start at 1 and grow by one per record (commit == prepare).
// Revisions start at 0 per stream and are dense; a tombstone has revision
// TombstoneRevision. Record.Created is taken once per group commit from
// Options.Now, in UTC.
//
// # Key layout
//
// All integers in keys are big-endian so that byte order is numeric order.
//
//	'l' pos:u64                          -> record (see below)
//	's' len:u32 stream rev:u64           -> pos:u64         (stream index; not for tombstones)
//	'i' len:u32 stream id:16             -> rev:u64         (exact per-stream idempotency index)
//	'h' stream                           -> head value      (one per stream ever written; also
//	                                                         the stream-name index for Streams)
//
// A head value is 17 bytes: last revision + 1 (u64, 0 = no events), a flag
// byte (bit 0: tombstoned) and the position (u64) of the newest record that
// changed the head. Readers that find a head newer than the published head
// wait for it to become durable before using it.
//
// A record value (version 1) is:
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
// The position is not repeated in the value: it is the key. decodeRecord
// checks every length against the remaining bytes, rejects unknown versions,
// unknown flag bits and trailing bytes, and returns ErrCorrupt instead of
// panicking.
//
// # Checksums, torn tails and corruption
//
// The package adds no checksums of its own. Durability and integrity are
// Pebble's: every WAL record is framed in 32 KiB blocks with a CRC-32C per
// chunk, and every sstable block carries a checksum (CRC-32C or xxhash64)
// verified on read. On Open, Pebble replays the WAL; a torn tail (a partially
// written chunk at the end of the last WAL, the result of a crash during an
// unsynced or in-progress write) is detected by its checksum or a zeroed
// header and the replay stops there: the batch it belonged to was never
// acknowledged by us (we acknowledge only after the sync), so dropping it is
// correct, and a Pebble batch is all-or-nothing, so a multi-event append is
// never half present. A checksum mismatch in the middle of the WAL or in an
// sstable is corruption, not a torn tail: Open or the read fails with Pebble's
// corruption error rather than silently dropping data.
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
// # Stream metadata
//
// The effective metadata of stream X is the last event of "$$X" if that event
// is JSON and a JSON object whose known keys ($maxAge, $maxCount, $tb) are
// positive (for $tb: non-negative) integers; anything else means no metadata.
// Metastreams have a fixed $maxCount of 1. These rules are applied when
// reading a stream, never to ReadAll. Delete and Tombstone of a metastream are
// rejected with ErrInvalid.
package eventlog
