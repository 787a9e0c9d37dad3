// System V shared memory: the shm* mirror and the SharedMemory class.
import { constants as bufferConstants } from 'node:buffer';
import { isArrayBuffer } from 'node:util/types';
import { markAsUntransferable } from 'node:worker_threads';
import { invalidArgType, invalidArgValue, invalidState, naming, outOfRange } from './errors';
import {
  createOrOpen, IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT, IpcObject, type IpcSetOptions, type IpcTarget,
  permissionChanges, timeOf, validateTarget,
} from './ipc';
import { native, type ReadOnlyMapping, type ShmidDs } from './native';
import { type ReadOnlyBuffer, readOnlyBuffer, readOnlyMapping } from './read-only-buffer';
import {
  INT32_MAX, toBytes, validateBoolean, validateFlagsIn, validateId, validateInteger, validateKey, validateMode,
  validateOptions,
} from './validate';

export type { ShmidDs };

/** shmat: attach read-only (the result is a ReadOnlyBuffer). */
export const SHM_RDONLY = 0o10000;
/** shmat: round the attach address down to SHMLBA. */
export const SHM_RND = 0o20000;
/** shmget: do not reserve swap for the segment (Linux), so huge sparse segments can exist. */
export const SHM_NORESERVE = 0o10000;
export const SHM_LOCK = 11;
export const SHM_UNLOCK = 12;
export const SHM_STAT = 13;
export const SHM_INFO = 14;

/** shmget: back the segment with huge pages (from vm.nr_hugepages, else EINVAL or ENOMEM). */
export const SHM_HUGETLB = 0o4000;
/**
 * shmat: replace a mapping at the given address. kernel-ipc's shmat takes no address, so the
 * kernel refuses it with EINVAL, as C's shmat(id, NULL, SHM_REMAP) is.
 */
export const SHM_REMAP = 0o40000;

// Not exported, only told apart from garbage: Linux's other shmget and shmat flags.
const SHM_HUGE_SIZE_BITS = 0x3f << 26;
const SHM_EXEC = 0o100000;
const shmgetFlags = 0o777 | IPC_CREAT | IPC_EXCL | SHM_HUGETLB | SHM_NORESERVE | SHM_HUGE_SIZE_BITS;
const shmatFlags = SHM_RDONLY | SHM_RND | SHM_REMAP | SHM_EXEC;

// ArrayBuffer#transfer (Node 21+) detaches every view like napi_detach_arraybuffer does, but
// throws where V8 refuses (an ArrayBuffer with a detach key) instead of aborting the process.
const transfer = (ArrayBuffer.prototype as { transfer?: (this: ArrayBuffer) => ArrayBuffer }).transfer;
// Newer Node makes markAsUntransferable set such a key, after which nothing could detach
// the attachment; there it is left unmarked.
const markingBlocksDetach = transfer !== undefined && (() => {
  const probe = new ArrayBuffer(1);
  markAsUntransferable(probe);
  try {
    transfer.call(probe);
    return false;
  } catch {
    return true;
  }
})();
/** Whether postMessage copies attachments rather than moving them (not on Node 24+). */
export const attachmentsUntransferable = !markingBlocksDetach;

// Node frees an attachment's memory with the thread that made it, even where ArrayBuffer#transfer
// and postMessage moved it to another; as this thread ends, while it can still tell, the addon
// keeps what moved mapped.
if (transfer !== undefined) process.prependListener('exit', () => native.shmEnding());

export const shmConstants = {
  SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_NORESERVE, SHM_HUGETLB, SHM_LOCK, SHM_UNLOCK, SHM_STAT, SHM_INFO,
} as const;

/** shmctl(index, SHM_STAT): the segment at a kernel table index, and its id. */
export interface ShmidDsWithId extends ShmidDs {
  id: number;
}

/** shmctl(0, IPC_INFO): the system's limits (struct shminfo). */
export interface ShmLimits {
  shmmax: number;
  shmmin: number;
  shmmni: number;
  shmseg: number;
  shmall: number;
  /** The highest index in use in the kernel's table, for iterating with SHM_STAT. */
  highestIndex: number;
}

/** shmctl(0, SHM_INFO): the system's usage (struct shm_info). */
export interface ShmUsage {
  used_ids: number;
  shm_tot: number;
  shm_rss: number;
  shm_swp: number;
  swap_attempts: number;
  swap_successes: number;
  highestIndex: number;
}

/** shmctl(shmid, IPC_SET, buf): what to change; the rest stays. */
export type ShmSetOptions = IpcSetOptions;

/** Create or open a segment; returns its shmid. `size` may be 0 to open an existing one. */
export function shmget(key: number, size: number, flags: number): number {
  validateKey(key);
  validateInteger(size, 'size', 0, Number.MAX_SAFE_INTEGER);
  validateFlagsIn(flags, shmgetFlags, 'permission bits and shmget flags');
  // Huge pages without a reservation are taken at first touch, and when none is left the
  // toucher gets SIGBUS: that is a crash waiting in memory, so it is refused here.
  if ((flags & SHM_HUGETLB) && (flags & SHM_NORESERVE)) {
    throw invalidArgValue('flags', flags, 'must not combine SHM_HUGETLB with SHM_NORESERVE');
  }
  try {
    return native.shmget(key | 0, size, flags);
  } catch (error) {
    throw naming(error, { key: key | 0 });
  }
}

/**
 * Attach a segment: a Buffer over all of it, zero-copy. With SHM_RDONLY, a ReadOnlyBuffer.
 * A segment larger than buffer.constants.MAX_LENGTH is a RangeError [ERR_BUFFER_TOO_LARGE].
 */
export function shmat(shmid: number, flags?: 0): Buffer;
export function shmat(shmid: number, flags: typeof SHM_RDONLY): ReadOnlyBuffer;
export function shmat(shmid: number, flags?: number): Buffer | ReadOnlyBuffer;
export function shmat(shmid: number, flags = 0): Buffer | ReadOnlyBuffer {
  validateId(shmid, 'shmid');
  validateFlagsIn(flags, shmatFlags, 'shmat flags');
  let attachment: Buffer | ReadOnlyMapping;
  try {
    attachment = native.shmat(shmid, flags, bufferConstants.MAX_LENGTH);
  } catch (error) {
    throw naming(error, { id: shmid });
  }
  if (!Buffer.isBuffer(attachment)) return readOnlyBuffer(attachment as ReadOnlyMapping);
  // Node keeps the ArrayBuffer it made for external memory, and as a worker ends it detaches
  // that one without a key, aborting the process if it has one (markAsUntransferable on Node
  // 24): so the memory is moved to an ArrayBuffer of our own first, and Node's never seen.
  const arrayBuffer = transfer === undefined ? attachment.buffer as ArrayBuffer : transfer.call(attachment.buffer as ArrayBuffer);
  native.shmAnchor(arrayBuffer, transfer !== undefined);
  // postMessage then copies it instead of moving the mapping to another thread.
  if (!markingBlocksDetach) markAsUntransferable(arrayBuffer);
  return arrayBuffer === attachment.buffer ? attachment : Buffer.from(arrayBuffer);
}

/**
 * Detach the attachment `view` belongs to. Every Buffer, TypedArray and DataView over it
 * (slices included) becomes zero-length. Anything else is EINVAL, as in C.
 */
export function shmdt(view: ArrayBufferView | ArrayBuffer | ReadOnlyBuffer): void {
  const attachment = attachmentOf(view);
  if (transfer === undefined || !isArrayBuffer(attachment) || !native.shmIsAttachment(attachment)) {
    native.shmdt(attachment);
    return;
  }
  let moved: ArrayBuffer;
  try {
    moved = transfer.call(attachment);
  } catch {
    throw invalidState('the attachment cannot be detached: its ArrayBuffer was marked untransferable');
  }
  native.shmdt(moved, attachment);
}

function attachmentOf(view: unknown): ArrayBuffer | ReadOnlyMapping {
  const mapping = readOnlyMapping(view);
  if (mapping !== undefined) return mapping;
  if (ArrayBuffer.isView(view) && isArrayBuffer(view.buffer)) return view.buffer;
  if (isArrayBuffer(view)) return view;
  throw invalidArgType('view', 'an instance of Buffer, TypedArray, DataView, ArrayBuffer or ReadOnlyBuffer', view);
}

const shmctlCommands = new Set<number>([IPC_STAT, SHM_STAT, IPC_SET, IPC_RMID, IPC_INFO, SHM_INFO, SHM_LOCK, SHM_UNLOCK]);

/** Control a segment, as shmctl(2). IPC_INFO and SHM_INFO ignore shmid. */
export function shmctl(shmid: number, cmd: typeof IPC_STAT): ShmidDs;
export function shmctl(index: number, cmd: typeof SHM_STAT): ShmidDsWithId;
export function shmctl(shmid: number, cmd: typeof IPC_SET, buf: ShmSetOptions): void;
export function shmctl(shmid: number, cmd: typeof IPC_RMID | typeof SHM_LOCK | typeof SHM_UNLOCK): void;
export function shmctl(shmid: number, cmd: typeof IPC_INFO): ShmLimits;
export function shmctl(shmid: number, cmd: typeof SHM_INFO): ShmUsage;
export function shmctl(shmid: number, cmd: number, buf?: ShmSetOptions): ShmidDs | ShmLimits | ShmUsage | void;
export function shmctl(shmid: number, cmd: number, buf?: ShmSetOptions): unknown {
  validateId(shmid, 'shmid');
  validateInteger(cmd, 'cmd', 0, INT32_MAX);
  if (!shmctlCommands.has(cmd)) throw invalidArgValue('cmd', cmd, 'must be one of the shmctl commands');
  const changes = cmd === IPC_SET ? permissionChanges(buf) : [-1, -1, -1];
  try {
    return native.shmctl(shmid, cmd, changes[0], changes[1], changes[2]);
  } catch (error) {
    // SHM_STAT takes a table index, and the INFO commands nothing.
    throw cmd === SHM_STAT || cmd === IPC_INFO || cmd === SHM_INFO ? error : naming(error, { id: shmid });
  }
}

export interface SharedMemoryCreateOptions {
  /** Permission bits, 0o600 unless given. */
  mode?: number;
  /** Fail with EEXIST if the key is taken (the default); false opens it instead. */
  exclusive?: boolean;
  /** Fill a segment this call created, as Buffer#fill. The kernel starts it zeroed. */
  fill?: number | string | Uint8Array;
  /** Reserve no swap (SHM_NORESERVE), for large sparse segments. */
  noReserve?: boolean;
}

export interface SharedMemoryOpenOptions {
  /** Attach with SHM_RDONLY: `buffer` is then a ReadOnlyBuffer. */
  readOnly?: boolean;
}

/**
 * A System V shared memory segment, attached to this process, after Python's
 * sysv_ipc.SharedMemory. Attributes are read from the kernel (IPC_STAT) on every access.
 */
export class SharedMemory<B extends Buffer | ReadOnlyBuffer = Buffer | ReadOnlyBuffer> extends IpcObject<ShmidDs> {
  readonly #readOnly: boolean;
  #buffer: B | undefined;

  private constructor(id: number, key: number, readOnly: boolean) {
    super(id, key);
    this.#readOnly = readOnly;
    this.#buffer = shmat(id, readOnly ? SHM_RDONLY : 0) as B;
  }

  /**
   * Create a segment of `size` bytes under `key` (IPC_PRIVATE for a new anonymous one, none for
   * a random unused key) and attach it. If attaching fails, a segment this call created is
   * removed again.
   */
  static create(key: number | null | undefined, size: number, options?: SharedMemoryCreateOptions): SharedMemory<Buffer> {
    validateInteger(size, 'size', 1, Number.MAX_SAFE_INTEGER);
    const { mode = 0o600, exclusive = true, fill, noReserve = false } = validateOptions<SharedMemoryCreateOptions>(options);
    validateMode(mode, 'options.mode');
    validateBoolean(exclusive, 'options.exclusive');
    validateBoolean(noReserve, 'options.noReserve');
    if (fill !== undefined && typeof fill !== 'number' && typeof fill !== 'string' && !(fill instanceof Uint8Array)) {
      throw invalidArgType('options.fill', 'of type number or string or an instance of Uint8Array', fill);
    }
    const flags = IPC_CREAT | IPC_EXCL | mode | (noReserve ? SHM_NORESERVE : 0);
    // An opened segment is someone else's: it is never filled.
    const made = createOrOpen(key, exclusive, (k) => shmget(k, size, flags), (k) => shmget(k, size, 0));
    let shm: SharedMemory<Buffer>;
    try {
      shm = new SharedMemory<Buffer>(made.id, made.key, false);
    } catch (error) {
      if (made.created) shmctl(made.id, IPC_RMID);
      throw error;
    }
    if (made.created && fill !== undefined) {
      try {
        shm.buffer.fill(fill);
      } catch (error) {
        shm.detach();
        shm.remove();
        throw error;
      }
    }
    return shm;
  }

  /** Open the existing segment under a key, or the one with an id (`{ id }`), and attach it (read-only if asked). */
  static open(target: IpcTarget, options?: SharedMemoryOpenOptions & { readOnly?: false }): SharedMemory<Buffer>;
  static open(target: IpcTarget, options: SharedMemoryOpenOptions & { readOnly: true }): SharedMemory<ReadOnlyBuffer>;
  static open(target: IpcTarget, options?: SharedMemoryOpenOptions): SharedMemory;
  static open(target: IpcTarget, options?: SharedMemoryOpenOptions): SharedMemory {
    const { key, id } = validateTarget(target, 'segment');
    const { readOnly = false } = validateOptions<SharedMemoryOpenOptions>(options);
    validateBoolean(readOnly, 'options.readOnly');
    if (key !== undefined) return new SharedMemory(shmget(key, 0, 0), key, readOnly);
    return new SharedMemory(id, shmctl(id, IPC_STAT).key, readOnly);
  }

  /** The whole segment, zero-copy: a Buffer, or a ReadOnlyBuffer when attached read-only. */
  get buffer(): B {
    if (!this.attached) throw invalidState('the shared memory is detached');
    return this.#buffer!;
  }

  /** Whether it was opened read-only (SHM_RDONLY), as attach() attaches it again. */
  get readOnly(): boolean {
    return this.#readOnly;
  }

  /** False after detach(), or after shmdt() on its buffer (segments are never empty). */
  get attached(): boolean {
    return this.#buffer !== undefined && this.#buffer.length > 0;
  }

  /** Copy `length` bytes out, starting at `offset` (to the end by default). */
  read(offset = 0, length?: number): Buffer {
    const size = this.buffer.length;
    validateInteger(offset, 'offset', 0, size);
    const count = length === undefined ? size - offset : validateInteger(length, 'length', 0, size - offset);
    const out = Buffer.allocUnsafe(count);
    this.buffer.copy(out, 0, offset, offset + count);
    return out;
  }

  /** Copy `data` (a string is UTF-8) in at `offset`; all of it fits or nothing is written. */
  write(data: string | ArrayBufferView, offset = 0): number {
    const buffer = this.buffer;
    if (!(buffer instanceof Buffer)) throw invalidState('the shared memory is attached read-only');
    const bytes = toBytes(data);
    validateInteger(offset, 'offset', 0, buffer.length);
    if (bytes.length > buffer.length - offset) {
      throw outOfRange('data.length', `<= ${buffer.length - offset} (the room after offset ${offset})`, bytes.length);
    }
    buffer.set(bytes, offset);
    return bytes.length;
  }

  /**
   * Attach again after detach(), as sysv_ipc's attach() (read-only if opened so): a new
   * `buffer`. Returns it; while attached, this is the one it has.
   */
  attach(): B {
    if (!this.attached) this.#buffer = shmat(this.id, this.#readOnly ? SHM_RDONLY : 0) as B;
    return this.#buffer!;
  }

  /** Detach from this process; `buffer` and every view over it become zero-length. Idempotent. */
  detach(): void {
    if (this.attached) shmdt(this.#buffer!);
    this.#buffer = undefined;
  }

  /** Mark the segment for removal: it goes when the last process detaches. */
  remove(): void {
    shmctl(this.id, IPC_RMID);
  }

  [Symbol.dispose](): void {
    this.detach();
  }

  /** The raw IPC_STAT record. */
  stat(): ShmidDs {
    return shmctl(this.id, IPC_STAT);
  }

  protected set(changes: ShmSetOptions): void {
    shmctl(this.id, IPC_SET, changes);
  }

  /** Bytes, as created (not rounded up to pages). */
  get size(): number {
    return this.stat().segsz;
  }

  get creatorPid(): number {
    return this.stat().cpid;
  }

  /** The pid of the last shmat or shmdt. */
  get lastPid(): number {
    return this.stat().lpid;
  }

  /** How many attachments exist, in all processes. */
  get attachCount(): number {
    return this.stat().nattch;
  }

  /** Null until it happens. */
  get attachTime(): Date | null {
    return timeOf(this.stat().atime);
  }

  get detachTime(): Date | null {
    return timeOf(this.stat().dtime);
  }

  get changeTime(): Date | null {
    return timeOf(this.stat().ctime);
  }
}
