// Read-only access to a SHM_RDONLY attachment. The mapping is PROT_READ: one write through
// a Buffer over it would kill the process with SIGSEGV, and JavaScript has no read-only
// TypedArray. Nor can a Buffer be hidden safely: Node's Buffer methods look up other methods
// on `this`, so patched prototypes could hand it out. So no ArrayBuffer over the mapping
// exists at all: the addon holds it, and every read copies exactly the bytes asked for
// straight out of the shared memory, with the bounds checked in C++.
import { inspect } from 'node:util';
import { bufferOutOfBounds, invalidArgType } from './errors';
import { native, type ReadOnlyMapping } from './native';
import { validateInteger } from './validate';

/** The read methods of Buffer, by how many bytes each reads. */
const fixedSizeReads = {
  readInt8: 1, readUInt8: 1,
  readInt16BE: 2, readInt16LE: 2, readUInt16BE: 2, readUInt16LE: 2,
  readInt32BE: 4, readInt32LE: 4, readUInt32BE: 4, readUInt32LE: 4, readFloatBE: 4, readFloatLE: 4,
  readBigInt64BE: 8, readBigInt64LE: 8, readBigUInt64BE: 8, readBigUInt64LE: 8, readDoubleBE: 8, readDoubleLE: 8,
} as const;
const variableSizeReads = ['readIntBE', 'readIntLE', 'readUIntBE', 'readUIntLE'] as const;

type ReadMethod = keyof typeof fixedSizeReads | (typeof variableSizeReads)[number];

// Numbers are decoded from a private copy of their bytes, never from the mapping.
const scratch = Buffer.alloc(8);
const constructing = Symbol('ReadOnlyBuffer');

let create: (mapping: ReadOnlyMapping, start: number, end: number) => ReadOnlyBuffer;
let mappingOf: (view: ReadOnlyBuffer) => ReadOnlyMapping;
let isView: (value: unknown) => value is ReadOnlyBuffer;

/**
 * Buffer#subarray's rules: converted to an integer as TypedArray#subarray does (a BigInt or a
 * Symbol is a TypeError, NaN is 0), negative counts from the end, everything clamped.
 */
function clamp(value: unknown, fallback: number, length: number): number {
  if (value === undefined) return fallback;
  const integer = Math.trunc(+(value as number)) || 0;
  return integer < 0 ? Math.max(length + integer, 0) : Math.min(integer, length);
}

export interface ReadOnlyBuffer extends Pick<Buffer, ReadMethod> {}

/**
 * A zero-copy, read-only view of a read-only attachment: Buffer's read methods, `at`,
 * `toString`, `subarray` and `copy`, each reading the shared memory in place. Made by
 * `shmat(id, SHM_RDONLY)`; zero-length once detached.
 */
export class ReadOnlyBuffer implements Iterable<number> {
  readonly #mapping: ReadOnlyMapping;
  readonly #start: number;
  readonly #end: number;

  /** Not for use: read-only views come from shmat(id, SHM_RDONLY). */
  constructor(token: symbol, mapping: ReadOnlyMapping, start: number, end: number) {
    if (token !== constructing) throw new TypeError('Illegal constructor: use shmat(shmid, SHM_RDONLY)');
    this.#mapping = mapping;
    this.#start = start;
    this.#end = end;
    // Frozen, so `view[0] = 1` throws in strict code instead of quietly adding a property.
    Object.freeze(this);
  }

  static {
    create = (mapping, start, end) => new ReadOnlyBuffer(constructing, mapping, start, end);
    mappingOf = (view) => view.#mapping;
    isView = (value): value is ReadOnlyBuffer => typeof value === 'object' && value !== null && #mapping in value;
    for (const [name, size] of Object.entries(fixedSizeReads)) {
      Object.defineProperty(ReadOnlyBuffer.prototype, name, {
        value(this: ReadOnlyBuffer, offset = 0) {
          this.#load(offset, size);
          return (scratch[name as ReadMethod] as (offset: number) => unknown)(0);
        },
        writable: true,
        configurable: true,
      });
    }
    for (const name of variableSizeReads) {
      Object.defineProperty(ReadOnlyBuffer.prototype, name, {
        value(this: ReadOnlyBuffer, offset: number, byteLength: number) {
          validateInteger(byteLength, 'byteLength', 1, 6);
          this.#load(offset, byteLength);
          return scratch[name](0, byteLength);
        },
        writable: true,
        configurable: true,
      });
    }
  }

  /**
   * Copies `size` bytes at `offset` to the start of scratch, checked as Buffer's read methods
   * check them. One call into the addon: it reports a detached mapping with -1.
   */
  #load(offset: unknown, size: number): void {
    const span = this.#end - this.#start;
    if (span < size) throw bufferOutOfBounds();
    validateInteger(offset, 'offset', 0, span - size);
    if (native.shmReadOnlyCopy(this.#mapping, this.#start + (offset as number), size, scratch, 0) < 0) {
      throw bufferOutOfBounds();
    }
  }

  /** 0 once the memory is detached. */
  get length(): number {
    return native.shmReadOnlySize(this.#mapping) === 0 ? 0 : this.#end - this.#start;
  }

  get byteLength(): number {
    return this.length;
  }

  /** A view of part of the same memory (no copy), with Buffer#subarray's rules. */
  subarray(start?: number, end?: number): ReadOnlyBuffer {
    const length = this.length;
    const from = clamp(start, 0, length);
    const to = Math.max(from, clamp(end, length, length));
    return create(this.#mapping, this.#start + from, this.#start + to);
  }

  /**
   * Copies bytes into `target` (any TypedArray or DataView, counted in bytes), as
   * Buffer#copy: as many as fit, returning how many.
   */
  copy(target: ArrayBufferView, targetStart = 0, sourceStart = 0, sourceEnd = this.length): number {
    if (!ArrayBuffer.isView(target)) throw invalidArgType('target', 'an instance of Buffer, TypedArray or DataView', target);
    const length = this.length;
    validateInteger(targetStart, 'targetStart', 0, Number.MAX_SAFE_INTEGER);
    validateInteger(sourceStart, 'sourceStart', 0, length);
    validateInteger(sourceEnd, 'sourceEnd', 0, Number.MAX_SAFE_INTEGER);
    const count = Math.min(Math.min(sourceEnd, length) - sourceStart, target.byteLength - targetStart);
    if (!(count > 0)) return 0;
    const bytes = new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
    return Math.max(0, native.shmReadOnlyCopy(this.#mapping, this.#start + sourceStart, count, bytes, targetStart));
  }

  /** A writable copy of the bytes (all, or start to end with Buffer#subarray's rules). */
  toBuffer(start?: number, end?: number): Buffer {
    const part = this.subarray(start, end);
    const out = Buffer.allocUnsafe(part.length);
    part.copy(out);
    return out;
  }

  /**
   * Decodes the bytes from start to end with Buffer#toString's rules: no negative counting
   * from the end, here; an empty range is '' whatever the encoding.
   */
  toString(encoding?: BufferEncoding, start?: number, end?: number): string {
    const length = this.length;
    const from = (start as number) <= 0 ? 0 : Math.min(Math.trunc(start as number) || 0, length);
    const to = end === undefined || end > length ? length : Math.trunc(end) || 0;
    if (to <= from) return '';
    return this.toBuffer(from, to).toString(encoding);
  }

  /** The byte at `index` (negative counts from the end), or undefined outside. */
  at(index: number): number | undefined {
    const span = this.#end - this.#start;
    const integer = Math.trunc(index) || 0;
    const position = integer < 0 ? span + integer : integer;
    if (position < 0 || position >= span) return undefined;
    return native.shmReadOnlyCopy(this.#mapping, this.#start + position, 1, scratch, 0) < 0 ? undefined : scratch[0];
  }

  *[Symbol.iterator](): IterableIterator<number> {
    const chunk = Buffer.allocUnsafe(4096);
    for (let offset = 0; offset < this.length; offset += chunk.length) {
      yield* chunk.subarray(0, this.copy(chunk, 0, offset));
    }
  }

  [inspect.custom](): string {
    const length = this.length;
    const shown = this.toBuffer(0, 50).toString('hex').replace(/(..)(?!$)/g, '$1 ');
    return `<ReadOnlyBuffer ${shown}${length > 50 ? ` ... ${length - 50} more bytes` : ''}>`;
  }
}

/** A view over a whole read-only mapping, for shmat. */
export function readOnlyBuffer(mapping: ReadOnlyMapping): ReadOnlyBuffer {
  return create(mapping, 0, native.shmReadOnlySize(mapping));
}

/** The mapping behind a view, for shmdt; undefined for anything that is not a real view. */
export function readOnlyMapping(value: unknown): ReadOnlyMapping | undefined {
  return isView(value) ? mappingOf(value) : undefined;
}
