// The kernel's futex on a 32-bit word of an attachment: wait and notify across processes, as
// Atomics.wait and Atomics.notify do across threads (V8 emulates those within one process, and
// only on SharedArrayBuffers). Use Atomics.load/store/compareExchange on the same Int32Array.
import { invalidArgType } from './errors';
import { type FutexOutcome, native } from './native';
import { INT32_MAX, INT32_MIN, validateInteger, validateNumber, validateOptions } from './validate';
import { validateWaitOptions, wait as waitOffThread, type WaitOptions } from './waiter';

export type { FutexOutcome };

export interface FutexWaitOptions {
  /** Milliseconds (fractions allowed) until it gives up with 'timed-out'; for ever unless given. */
  timeout?: number;
}

export interface FutexWaitAsyncOptions extends FutexWaitOptions, Pick<WaitOptions, 'signal' | 'ref'> {}

/** The addon's timeout: -1 for none. */
function timeoutOf(options: FutexWaitOptions): number {
  const { timeout } = options;
  if (timeout === undefined || timeout === Infinity) return -1;
  return validateNumber(timeout, 'options.timeout', 0, Infinity);
}

// Taken at load, as V8 answers them from the view itself: a view's own `length` or `buffer`,
// or a replaced Symbol.hasInstance, must not point a wait at other memory.
const TypedArray = Object.getPrototypeOf(Int32Array.prototype) as object;
const getter = (name: PropertyKey) => Object.getOwnPropertyDescriptor(TypedArray, name)!.get!;
const kindOf = getter(Symbol.toStringTag) as (this: unknown) => string | undefined;
const lengthOf = getter('length') as (this: unknown) => number;
const bufferOf = getter('buffer') as (this: unknown) => ArrayBuffer;

/** A word of an attachment: the kernel keys a shared futex by the segment, not the process. */
function checkWord(view: unknown, index: unknown): void {
  if (kindOf.call(view) !== 'Int32Array' || !native.shmIsAttachment(bufferOf.call(view))) {
    throw invalidArgType('view', 'an Int32Array over a shared memory attachment (shmat, SharedMemory#buffer)', view);
  }
  validateInteger(index, 'index', 0, lengthOf.call(view) - 1);
}

/**
 * Waits while word `index` of `view` holds `expected`, blocking the calling thread, until
 * notify() (from any process) wakes it: 'ok', 'not-equal' if the word held something else,
 * 'timed-out' once `timeout` ms passed.
 */
export function wait(view: Int32Array, index: number, expected: number, options?: FutexWaitOptions): FutexOutcome {
  checkWord(view, index);
  validateInteger(expected, 'expected', INT32_MIN, INT32_MAX);
  return native.futexWait(view, index, expected, timeoutOf(validateOptions<FutexWaitOptions>(options)));
}

/**
 * wait, off the event loop: on a thread of kernel-ipc's own (never libuv's threadpool), each
 * wait on one of its own. `signal` rejects it with an AbortError unless it had ended.
 */
export function waitAsync(view: Int32Array, index: number, expected: number, options?: FutexWaitAsyncOptions): Promise<FutexOutcome> {
  let timeout: number;
  let signal: AbortSignal | undefined;
  let ref: boolean;
  try {
    checkWord(view, index);
    validateInteger(expected, 'expected', INT32_MIN, INT32_MAX);
    const valid = validateOptions<FutexWaitAsyncOptions>(options);
    timeout = timeoutOf(valid);
    ({ signal, ref } = validateWaitOptions({ signal: valid.signal, ref: valid.ref }));
  } catch (error) {
    return Promise.reject(error);
  }
  return waitOffThread<FutexOutcome>(
    'futex',
    { signal, timeout: undefined, ref },
    (refNow) => native.futexWaitAsync(view, index, expected, timeout, refNow),
  );
}

/** Wakes up to `count` (all unless given) waiters on word `index` of `view`; returns how many it woke. */
export function notify(view: Int32Array, index: number, count = Infinity): number {
  checkWord(view, index);
  if (count !== Infinity) validateInteger(count, 'count', 0, INT32_MAX);
  return native.futexWake(view, index, count);
}
