// The channel's segment, as both ends (and C programs) see it: a header, then a ring of records.
// All numbers are 32-bit words in the machine's byte order (little-endian on x64 and arm64);
// positions count bytes, free-running modulo 2^32.
//
//   bytes   0..63   word 0 magic 'KIPC' (0x4350494b), 1 version (2), 2 capacity (ring bytes, a
//                   power of two), 3 header bytes (512), 4 writer pid, 5 reader pid (0 until
//                   attached), 6 writer closed (1), 7 reader closed (1)
//   bytes  64..127  word 16 write position (bytes committed; the reader looks at records' stamps,
//                   not at it)
//   bytes 128..191  word 32 read position (bytes released)
//   bytes 192..255  word 48 writer sleeps, 49 reader sleeps: apart from the positions, which
//                   change with every record, since each end looks at the other's sleeps word
//                   after every record (they change only when an end sleeps or wakes).
//                   A sleeps word is 0 while its end is awake; else (n << 2) | how, n counting
//                   its sleeps (a new n for every one), how 1 for the futex at this very word
//                   (waiting while it holds that value), 2 for its doorbell. A waker exchanges the
//                   value it read for 0, and only if that succeeds wakes the end: FUTEX_WAKE on
//                   the word, or a byte on the doorbell.
//   bytes 256..511  the doorbells' path prefix, NUL-terminated: FIFOs <prefix>.reader and
//                   <prefix>.writer, which the other end writes a byte to when this one sleeps
//                   on it, and whose end-of-file says that the other end is gone
//   bytes 512..     the ring: records of [length, stamp] then `length` bytes, padded to 8; a
//                   record never wraps: a padding record (kind 2) fills the end of the ring
//                   instead. The stamp, stored last, is the record's position with its kind in
//                   the low 3 bits (1 data, 2 padding): the reader waits for the stamp its read
//                   position should have, in the very cache line that brings the record, rather
//                   than for the write position, a line of its own (a transfer between CPUs more
//                   per record). The writer stores 0 in the next record's stamp word before it
//                   stores a stamp (unless the ring is then full): what was there may be payload
//                   of an earlier lap, or a stamp of 2^32 bytes before, either of which can match.
import { invalidState } from '../errors';

export const MAGIC = 0x4350494b;
export const VERSION = 2;
export const HEADER_BYTES = 512;
export const RECORD_HEADER = 8;
export const KIND_DATA = 1;
export const KIND_PADDING = 2;
export const MIN_CAPACITY = 4096;
export const MAX_CAPACITY = 2 ** 30;

export const W = {
  magic: 0, version: 1, capacity: 2, headerBytes: 3, writerPid: 4, readerPid: 5, writerClosed: 6, readerClosed: 7,
  write: 16, read: 32, writerSleeps: 48, readerSleeps: 49,
} as const;

export const PREFIX_OFFSET = 256;
export const PREFIX_BYTES = 256;

/** Sleeping states of an end, in its `sleeps` word: 0, or (n << 2) | how. */
export const AWAKE = 0;
export const ON_FUTEX = 1;
export const ON_DOORBELL = 2;
export const SLEEP_HOW = 3;
export const SLEEP_COUNT = 0x3fffffff;

/** The stamp of a record of `kind` at `position`: its header's second word, stored last. */
export function stamp(position: number, kind: number): number {
  return (position & ~7) | kind;
}

/** A record's bytes in the ring: its header and its payload, padded to 8. */
export function recordBytes(length: number): number {
  return RECORD_HEADER + ((length + 7) & ~7);
}

/** The largest payload of one record: half the ring, so that one always fits after a wrap. */
export function maxPayload(capacity: number): number {
  return capacity / 2 - RECORD_HEADER;
}

/** Error [ERR_CHANNEL_CORRUPT]: the other end wrote what no channel holds. */
export function corrupt(what: string): Error {
  return Object.assign(invalidState(`the channel is corrupt: ${what}`), { code: 'ERR_CHANNEL_CORRUPT' });
}
