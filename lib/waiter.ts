// The JavaScript side of src/waiter.cc: promises for blocking calls, which run on threads the
// addon owns (never the event loop, never libuv's threadpool).
import { isMainThread } from 'node:worker_threads';
import { abortError, invalidArgType, timeoutError } from './errors';
import { native } from './native';
import { INT32_MAX, validateBoolean, validateInteger, validateOptions } from './validate';

export interface WaitOptions {
  /** Cancels the call: it rejects with an AbortError, unless it completed first. */
  signal?: AbortSignal;
  /** Milliseconds: the call rejects with a TimeoutError [ETIMEDOUT], unless it completed first. */
  timeout?: number;
  /** Whether the pending call keeps the process alive, as a socket read does (default true). */
  ref?: boolean;
}

export interface ValidWaitOptions {
  signal: AbortSignal | undefined;
  timeout: number | undefined;
  ref: boolean;
}

export function validateWaitOptions(options: unknown): ValidWaitOptions {
  const { signal, timeout, ref = true } = validateOptions<WaitOptions>(options);
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalidArgType('options.signal', 'an instance of AbortSignal', signal);
  }
  if (timeout !== undefined) validateInteger(timeout, 'options.timeout', 0, INT32_MAX);
  validateBoolean(ref, 'options.ref');
  return { signal, timeout, ref };
}

const DONE = 0;
const CANCELLED = 1;

const pending = new Map<number, (status: number, value: unknown) => void>();

native.waiterInit((id, status, value) => {
  const complete = pending.get(id);
  pending.delete(id);
  complete?.(status, value);
});
// process.exit() and uncaught exceptions end the main thread's process without the cleanup
// that gives back what a completed call took: do it here, when no promise can settle anymore.
// Node joins worker threads as the main thread's process exits, and one blocked in a
// synchronous call (msgrcv, semop) would hang it: such calls then fail with EINTR.
process.on('exit', () => {
  native.waiterStop();
  if (isMainThread) native.interruptBlocking();
});

/**
 * Runs `start(ref)` (after `after` settles, if given), which makes the call: it returns the
 * result when the call completed at once, or the id of a waiter call. An abort or timeout
 * rejects only if the call took nothing: one the kernel completed anyway resolves, with what
 * `adopt` makes of the result, at once, so that what it holds (a descriptor) has an owner
 * before JavaScript could stop running.
 */
export function wait<T, R = T>(
  syscall: string,
  { signal, timeout, ref }: ValidWaitOptions,
  start: (ref: boolean) => R | number,
  adopt: (result: R) => T = (result) => result as unknown as T,
  after?: Promise<unknown>,
): Promise<T> {
  if (signal?.aborted) return Promise.reject(abortError(signal.reason));
  return new Promise<T>((resolve, reject) => {
    let started = false;
    let id = 0;
    let stoppedBy: Error | undefined;
    let timer: NodeJS.Timeout | undefined;

    const finish = () => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const stop = (error: Error) => {
      if (stoppedBy !== undefined) return;
      stoppedBy = error;
      if (id !== 0) {
        native.waiterCancel(id);
      } else if (!started) {
        finish();
        reject(error);
      }
    };
    const settle = (result: R) => {
      try {
        resolve(adopt(result));
      } catch (error) {
        reject(error);
      }
    };
    const onAbort = () => stop(abortError(signal!.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeout !== undefined) {
      // The pending call keeps the process alive (or not, with ref: false), not the timer.
      timer = setTimeout(() => stop(timeoutError(syscall, timeout)), timeout).unref();
    }

    const begin = () => {
      if (stoppedBy !== undefined) return;
      started = true;
      let result: R | number;
      try {
        result = start(ref);
      } catch (error) {
        finish();
        reject(error);
        return;
      }
      if (typeof result !== 'number') {
        finish();
        settle(result);
        return;
      }
      id = result;
      pending.set(id, (status, value) => {
        finish();
        if (status === DONE) settle(value as R);
        else if (status === CANCELLED) reject(stoppedBy ?? abortError(undefined));
        else reject(value);
      });
    };
    if (after === undefined) begin();
    else after.then(begin, begin);
  });
}
