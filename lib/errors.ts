import { constants } from 'node:os';
import { inspect } from 'node:util';

// errno number -> name; the first name wins where two share a number (EAGAIN/EWOULDBLOCK).
const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/**
 * A failed system call, reported the way Node's fs reports one: `code` is the errno name,
 * `errno` the negative errno number (as in Node), `syscall` the call that failed.
 */
export class IpcError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  declare readonly path?: string;
  /** The key the call looked up (shmget, msgget, semget). */
  declare readonly key?: number;
  /** The id the call used. */
  declare readonly id?: number;

  /** Made by the addon: errnum is C's positive errno, description its strerror text. */
  constructor(errnum: number, syscall: string, description: string, path?: string) {
    const code = errnoNames.get(errnum) ?? 'UNKNOWN';
    const text = description.charAt(0).toLowerCase() + description.slice(1);
    super(`${code}: ${text}, ${syscall}${path === undefined ? '' : ` '${path}'`}`);
    this.name = 'IpcError';
    this.code = code;
    this.errno = -errnum;
    this.syscall = syscall;
    if (path !== undefined) this.path = path;
  }
}

/** What a System V call is about: the key it looks up, or the id it uses. */
export type Subject = { readonly key: number } | { readonly id: number };

/** A key as ipcs prints it: key_t's 32 bits in hex. */
export function keyText(key: number): string {
  return `0x${(key >>> 0).toString(16).padStart(8, '0')}`;
}

/** A subject as an error names it ('key 0x4b491507', 'id 5'), and the property it sets. */
function describe(subject: Subject): { name: 'key' | 'id'; value: number; text: string } {
  return 'key' in subject
    ? { name: 'key', value: subject.key, text: `key ${keyText(subject.key)}` }
    : { name: 'id', value: subject.id, text: `id ${subject.id}` };
}

/**
 * Names the key or id in the error of a call about it, as fs names the path
 * ('ENOENT: no such file or directory, shmget key 0x4b491507'), and sets `key` or `id`.
 * Anything but an IpcError, or one that names something already, is returned as it is.
 */
export function naming(error: unknown, subject: Subject): unknown {
  if (!(error instanceof IpcError) || error.path !== undefined || error.key !== undefined || error.id !== undefined) {
    return error;
  }
  const header = `${error.name}: ${error.message}`;
  // V8 writes the stack, message first, when it is first read: read it before the message
  // changes. A user's Error.prepareStackTrace may throw; the error is named all the same.
  let stack: unknown;
  try {
    stack = error.stack;
  } catch {
    stack = undefined;
  }
  const { name, value, text } = describe(subject);
  error.message += ` ${text}`;
  Object.defineProperty(error, name, { value, enumerable: true });
  if (typeof stack === 'string' && stack.startsWith(header)) error.stack = `${error.name}: ${error.message}${stack.slice(header.length)}`;
  return error;
}

function withCode<E extends Error>(error: E, code: string): E & { code: string } {
  return Object.assign(error, { code });
}

function describeReceived(value: unknown): string {
  if (value === null || value === undefined) return `Received ${value}`;
  if (typeof value === 'function') return `Received function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name ? `Received an instance of ${name}` : `Received ${inspect(value, { depth: -1 })}`;
  }
  const shown = inspect(value).slice(0, 28);
  return `Received type ${typeof value} (${shown})`;
}

/** TypeError [ERR_INVALID_ARG_TYPE], worded like Node's own. */
export function invalidArgType(name: string, expected: string, value: unknown): TypeError {
  return withCode(
    new TypeError(`The "${name}" argument must be ${expected}. ${describeReceived(value)}`),
    'ERR_INVALID_ARG_TYPE',
  );
}

/** TypeError [ERR_INVALID_ARG_VALUE], worded like Node's own. */
export function invalidArgValue(name: string, value: unknown, reason: string): TypeError {
  return withCode(
    new TypeError(`The argument '${name}' ${reason}. Received ${inspect(value)}`),
    'ERR_INVALID_ARG_VALUE',
  );
}

/** RangeError [ERR_OUT_OF_RANGE], worded like Node's own. */
export function outOfRange(name: string, range: string, value: unknown): RangeError {
  return withCode(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${inspect(value)}`),
    'ERR_OUT_OF_RANGE',
  );
}

/** Error [ERR_INVALID_STATE]: the object cannot do this now (detached, read-only). */
export function invalidState(message: string): Error {
  return withCode(new Error(`Invalid state: ${message}`), 'ERR_INVALID_STATE');
}

/** TypeError [ERR_INVALID_FD_TYPE], as net.Socket names a descriptor it cannot stream. */
export function notFifo(path: string): TypeError {
  return Object.assign(withCode(new TypeError(`'${path}' is not a FIFO`), 'ERR_INVALID_FD_TYPE'), { path });
}

/** TypeError [ERR_UNKNOWN_SIGNAL], as process.kill reports it. */
export function unknownSignal(value: unknown): TypeError {
  return withCode(new TypeError(`Unknown signal: ${inspect(value)}`), 'ERR_UNKNOWN_SIGNAL');
}

/** RangeError [ERR_BUFFER_OUT_OF_BOUNDS], as Buffer's read methods throw it. */
export function bufferOutOfBounds(): RangeError {
  return withCode(new RangeError('Attempt to access memory outside buffer bounds'), 'ERR_BUFFER_OUT_OF_BOUNDS');
}

/** The rejection of an aborted call, as Node's own AbortError: nothing was done. */
export function abortError(cause: unknown): Error {
  const error = withCode(new Error('The operation was aborted', { cause }), 'ABORT_ERR');
  error.name = 'AbortError';
  return error;
}

/**
 * The failure of a call whose `timeout` passed: nothing was done. It names the key or id the
 * call was about, when given, as naming() does ('semtimedop id 5 timed out after 100 ms').
 */
export function timeoutError(syscall: string, timeout: number, subject?: Subject, message?: string): Error {
  const about = subject === undefined ? undefined : describe(subject);
  const text = message ?? `${syscall}${about === undefined ? '' : ` ${about.text}`} timed out after ${timeout} ms`;
  const error = Object.assign(new Error(text), { code: 'ETIMEDOUT', syscall });
  error.name = 'TimeoutError';
  if (about !== undefined) Object.defineProperty(error, about.name, { value: about.value, enumerable: true });
  return error;
}
