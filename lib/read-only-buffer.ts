// A zero-copy view with Buffer's read methods and no way to write. A SHM_RDONLY mapping is
// PROT_READ: a Buffer over it would let `buf[0] = 1` kill the process with SIGSEGV, and
// JavaScript has no read-only TypedArray, so the writable Buffer stays private in here.
import { inspect } from 'node:util';
import { invalidArgType } from './errors';

const readMethods = [
  'readBigInt64BE', 'readBigInt64LE', 'readBigUInt64BE', 'readBigUInt64LE',
  'readDoubleBE', 'readDoubleLE', 'readFloatBE', 'readFloatLE',
  'readInt8', 'readInt16BE', 'readInt16LE', 'readInt32BE', 'readInt32LE', 'readIntBE', 'readIntLE',
  'readUInt8', 'readUInt16BE', 'readUInt16LE', 'readUInt32BE', 'readUInt32LE', 'readUIntBE', 'readUIntLE',
  'at', 'compare', 'copy', 'entries', 'equals', 'includes', 'indexOf', 'keys', 'lastIndexOf',
  'toJSON', 'toString', 'values',
] as const;

type ReadMethod = (typeof readMethods)[number];

let bytesOf: (view: ReadOnlyBuffer) => Buffer;

export interface ReadOnlyBuffer extends Pick<Buffer, ReadMethod> {}

/**
 * Read-only, zero-copy access to bytes: every read method of Buffer, reading the memory in
 * place. Copy out with `toBuffer()` or `copy(target)` to hand the bytes to a Buffer API.
 */
export class ReadOnlyBuffer implements Iterable<number> {
  readonly #bytes: Buffer;

  constructor(bytes: Uint8Array) {
    if (!(bytes instanceof Uint8Array)) throw invalidArgType('bytes', 'an instance of Uint8Array', bytes);
    this.#bytes = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Frozen, so `view[0] = 1` throws in strict code instead of quietly adding a property.
    Object.freeze(this);
  }

  static {
    bytesOf = (view) => view.#bytes;
    for (const name of readMethods) {
      Object.defineProperty(ReadOnlyBuffer.prototype, name, {
        value(this: ReadOnlyBuffer, ...args: unknown[]) {
          return Reflect.apply(this.#bytes[name], this.#bytes, args);
        },
        writable: true,
        configurable: true,
      });
    }
  }

  /** 0 once the memory is detached. */
  get length(): number {
    return this.#bytes.length;
  }

  get byteLength(): number {
    return this.#bytes.byteLength;
  }

  /** A read-only view of part of the same memory (no copy), as Buffer#subarray. */
  subarray(start?: number, end?: number): ReadOnlyBuffer {
    return new ReadOnlyBuffer(this.#bytes.subarray(start, end));
  }

  /** A writable copy of the bytes, for APIs that want a Buffer. */
  toBuffer(): Buffer {
    return Buffer.from(this.#bytes);
  }

  [Symbol.iterator](): IterableIterator<number> {
    return this.#bytes.values();
  }

  [inspect.custom](depth: number, options: object): string {
    return `ReadOnly${inspect(this.#bytes, { ...options, depth })}`;
  }
}

/** The private Buffer behind a view, for shmdt. */
export function readOnlyBytes(view: ReadOnlyBuffer): Buffer {
  return bytesOf(view);
}
