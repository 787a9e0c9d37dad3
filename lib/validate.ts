// Argument checks, run before any syscall so mistakes never reach the kernel.
import { invalidArgType, invalidArgValue, outOfRange } from './errors';

export const INT32_MAX = 0x7fffffff;
export const INT32_MIN = -0x80000000;
/** The largest uid/gid; (uid_t)-1 means "unchanged" to the kernel, so it is not a value. */
export const ID_MAX = 0xfffffffe;

export function validateInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  return value;
}

/** A System V key: key_t is a C int, but keys are often written as unsigned hex. */
export function validateKey(value: unknown, name = 'key'): number {
  return validateInteger(value, name, -0x80000000, 0xffffffff) | 0;
}

/** An IPC identifier (shmid, msqid, semid) or a kernel table index. */
export function validateId(value: unknown, name: string): number {
  return validateInteger(value, name, 0, INT32_MAX);
}

/** A flags word: permission bits and IPC_* / SHM_* bits, as a non-negative C int. */
export function validateFlags(value: unknown, name = 'flags'): number {
  return validateInteger(value, name, 0, INT32_MAX);
}

/** A flags word that may hold only the `allowed` bits, which `what` describes. */
export function validateFlagsIn(value: unknown, allowed: number, what: string, name = 'flags'): number {
  validateFlags(value, name);
  if ((value as number) & ~allowed) throw invalidArgValue(name, value, `must hold only ${what}`);
  return value as number;
}

/** Whether `value` is an integer in [min, max]: the fast path before a validate* call names it. */
export function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return Number.isInteger(value) && (value as number) >= min && (value as number) <= max;
}

/** A number in [min, max], fractions allowed (a time in milliseconds, say). */
export function validateNumber(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!(value >= min && value <= max)) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  return value;
}

export function validateMode(value: unknown, name = 'mode'): number {
  return validateInteger(value, name, 0, 0o777);
}

export function validateBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
  return value;
}

export function validateObject<T extends object>(value: unknown, name: string): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgType(name, 'of type object', value);
  }
  return value as T;
}

/** An optional options object: undefined reads as {}. */
export function validateOptions<T extends object>(value: unknown, name = 'options'): T {
  return value === undefined ? ({} as T) : validateObject<T>(value, name);
}

/** A path for a syscall: a string without NUL bytes (C would stop at the first one). */
export function validatePath(value: unknown, name = 'path'): string {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
  if (value.includes('\u0000')) throw invalidArgValue(name, value, 'must be a string without null bytes');
  return value;
}

/** Bytes to copy in: a string (UTF-8), a Buffer or any TypedArray/DataView. */
export function toBytes(value: unknown, name = 'data'): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  // A view over a detached buffer has no bytes (and no buffer to view again).
  if (value instanceof Uint8Array) return value.byteLength === 0 ? new Uint8Array(0) : value;
  if (ArrayBuffer.isView(value)) {
    return value.byteLength === 0 ? new Uint8Array(0) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  throw invalidArgType(name, 'of type string or an instance of Buffer, TypedArray or DataView', value);
}
