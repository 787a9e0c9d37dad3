// The channel's segment, as both ends (and C programs) see it: a header, then a ring of records.
// All numbers are little-endian 32-bit words; positions count bytes, free-running modulo 2^32.
//
//   bytes   0..63   word 0 magic 'KIPC' (0x4350494b), 1 version (1), 2 capacity (ring bytes, a
//                   power of two), 3 header bytes (512), 4 writer pid, 5 reader pid (0 until
//                   attached), 6 writer closed (1), 7 reader closed (1)
//   bytes  64..127  word 16 write position (bytes committed), 17 writer sleeps (1 on the futex at
//                   word 32, 2 on its doorbell)
//   bytes 128..191  word 32 read position (bytes released), 33 reader sleeps (1 on the futex at
//                   word 16, 2 on its doorbell)
//   bytes 256..511  the doorbells' path prefix, NUL-terminated: FIFOs <prefix>.reader and
//                   <prefix>.writer, which the other end writes a byte to when this one sleeps
//                   on it, and whose end-of-file says that the other end is gone
//   bytes 512..     the ring: records of [length, kind] then `length` bytes, padded to 8; a record
//                   never wraps: a padding record (kind 2) fills the end of the ring instead
import { invalidState } from '../errors';

export const MAGIC = 0x4350494b;
export const VERSION = 1;
export const HEADER_BYTES = 512;
export const RECORD_HEADER = 8;
export const KIND_DATA = 1;
export const KIND_PADDING = 2;
export const MIN_CAPACITY = 4096;
export const MAX_CAPACITY = 2 ** 30;

export const W = {
  magic: 0, version: 1, capacity: 2, headerBytes: 3, writerPid: 4, readerPid: 5, writerClosed: 6, readerClosed: 7,
  write: 16, writerSleeps: 17, read: 32, readerSleeps: 33,
} as const;

export const PREFIX_OFFSET = 256;
export const PREFIX_BYTES = 256;

/** Sleeping states of an end, in its `sleeps` word. */
export const AWAKE = 0;
export const ON_FUTEX = 1;
export const ON_DOORBELL = 2;

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
