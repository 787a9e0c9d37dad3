// The JavaScript side of src/waiter: promises for blocking calls, which run on threads the
// addon owns (never the event loop, never libuv's threadpool).
import { addAbortListener } from 'node:events';
import { constants } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import { abortError, invalidArgType, IpcError, naming, type Subject, timeoutError } from './errors';
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

// Taken before user code can replace them: how a call settles must not depend on user code
// (a signal whose own removeEventListener throws, say).
const { addEventListener, removeEventListener } = EventTarget.prototype;
const abortedOf = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;
const reasonOf = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'reason')!.get!;
const { clearTimeout, setTimeout } = globalThis;
const { then } = Promise.prototype;
const { get: mapGet, set: mapSet, delete: mapDelete } = WeakMap.prototype;
const { nextTick } = process;

// Node's own abort listeners still run when an earlier listener calls stopImmediatePropagation(),
// through an option keyed by a symbol of Node's internals; events.addAbortListener passes that
// option to addEventListener, which is where it is taken from.
const abortListenerOptions: { once: true } = (() => {
  const probe = new AbortController().signal;
  let resist: symbol | undefined;
  Object.defineProperty(probe, 'addEventListener', {
    value: (_type: string, _listener: unknown, options: object) => {
      resist = Object.getOwnPropertySymbols(options)[0];
    },
  });
  addAbortListener(probe, () => undefined);
  return resist === undefined ? { once: true } : { once: true, [resist]: true };
})();

/** The calls waiting on one signal, in call order, behind one listener. */
interface AbortWaiters {
  readonly calls: Record<number, () => void>;
  count: number;
  readonly dispatch: () => void;
}

// One listener per signal, not one per call: EventTarget walks a signal's listeners to add one
// (it looks for a duplicate), and 10,000 calls sharing a signal took half a second to start.
const abortWaiters = new WeakMap<AbortSignal, AbortWaiters>();
let nextWaiter = 0;

/**
 * Runs `onAbort` once `signal` (a real AbortSignal, not aborted yet) aborts, in call order,
 * whatever the signal's own methods or other listeners do; returns what keeps it from running.
 */
export function whenAborted(signal: AbortSignal, onAbort: () => void): () => void {
  let waiters: AbortWaiters | undefined = mapGet.call(abortWaiters, signal);
  if (waiters === undefined) {
    const made: AbortWaiters = {
      calls: Object.create(null),
      count: 0,
      dispatch() {
        mapDelete.call(abortWaiters, signal);
        for (const key in made.calls) {
          const call = made.calls[key];
          delete made.calls[key];
          try {
            call();
          } catch (error) {
            // As EventTarget does with a listener's: reported, and the others still run.
            nextTick(() => {
              throw error;
            });
          }
        }
        made.count = 0;
      },
    };
    addEventListener.call(signal, 'abort', made.dispatch, abortListenerOptions);
    mapSet.call(abortWaiters, signal, made);
    waiters = made;
  }
  const own = waiters;
  const key = nextWaiter++;
  own.calls[key] = onAbort;
  own.count++;
  return () => {
    if (own.calls[key] === undefined) return;
    delete own.calls[key];
    if (--own.count > 0 || mapGet.call(abortWaiters, signal) !== own) return;
    mapDelete.call(abortWaiters, signal);
    removeEventListener.call(signal, 'abort', own.dispatch);
  };
}

/** Whether `value` is a real AbortSignal: one made with AbortSignal.prototype alone is not. */
function isAbortSignal(value: unknown): value is AbortSignal {
  try {
    abortedOf.call(value);
    return true;
  } catch {
    return false;
  }
}

export function validateWaitOptions(options: unknown): ValidWaitOptions {
  const { signal, timeout, ref = true } = validateOptions<WaitOptions>(options);
  if (signal !== undefined && !isAbortSignal(signal)) {
    throw invalidArgType('options.signal', 'an instance of AbortSignal', signal);
  }
  if (timeout !== undefined) validateInteger(timeout, 'options.timeout', 0, INT32_MAX);
  validateBoolean(ref, 'options.ref');
  return { signal, timeout, ref };
}

const DONE = 0;
const CANCELLED = 1;
const FAILED = 2;

interface Pending {
  syscall: string;
  complete(status: number, value: unknown): void;
}

// By id; an object without a prototype, so that no method user code can replace is on the way.
const pending: Record<number, Pending | undefined> = Object.create(null);

// Returns whether a call took the result: one nobody takes is given back.
native.waiterInit((id, status, value) => {
  const call = pending[id];
  if (call === undefined) return false;
  delete pending[id];
  call.complete(status, value);
  return true;
});
// process.exit() and uncaught exceptions end the main thread's process without the cleanup
// that gives back what a completed call took: do it here, when no promise can settle anymore.
// Node joins worker threads as the main thread's process exits, and one blocked in a
// synchronous call (msgrcv, semop) would hang it: such calls then fail with EINTR, as do calls
// that would wait made in exit listeners, which is why this one goes first. Calls still
// pending reject, for anyone left to hear it ('exit' emitted by hand).
process.prependListener('exit', () => {
  native.waiterStop();
  if (isMainThread) native.interruptBlocking();
  for (const id in pending) {
    const { syscall, complete } = pending[id]!;
    delete pending[id];
    complete(FAILED, exiting(syscall));
  }
});

function exiting(syscall: string): Error {
  return new IpcError(constants.errno.EINTR, syscall, 'Interrupted: the process is exiting');
}

/**
 * Runs `start(ref)` (after `after` settles, if given), which makes the call: it returns the
 * result when the call completed at once, or the id of a waiter call. An abort or timeout
 * rejects only if the call took nothing: one the kernel completed anyway resolves, with what
 * `adopt` makes of the result, at once, so that what it holds (a descriptor) has an owner
 * before JavaScript could stop running. A failure of the call names `subject`. Never throws:
 * every failure rejects.
 */
export function wait<T, R = T>(
  syscall: string,
  options: ValidWaitOptions,
  start: (ref: boolean) => R | number,
  adopt: (result: R) => T = (result) => result as unknown as T,
  after?: Promise<unknown>,
  subject?: Subject,
): Promise<T> {
  try {
    return waitFor(syscall, options, start, adopt, after, subject);
  } catch (error) {
    return Promise.reject(error);
  }
}

function waitFor<T, R>(
  syscall: string,
  { signal, timeout, ref }: ValidWaitOptions,
  start: (ref: boolean) => R | number,
  adopt: (result: R) => T,
  after: Promise<unknown> | undefined,
  subject: Subject | undefined,
): Promise<T> {
  if (signal !== undefined && abortedOf.call(signal)) return Promise.reject(abortError(reasonOf.call(signal)));
  return new Promise<T>((resolve, reject) => {
    let started = false;
    let id = 0;
    let stoppedBy: Error | undefined;
    let timer: NodeJS.Timeout | undefined;
    let stopWaiting: (() => void) | undefined;
    // Naming the subject must not keep the call from settling.
    const failed = (error: unknown) => {
      let named = error;
      try {
        if (subject !== undefined) named = naming(error, subject);
      } catch {
        named = error;
      }
      reject(named);
    };

    // After the promise has settled, so that nothing it runs can keep it from settling; and
    // nothing it throws may reach the addon, which would take the result back.
    const cleanUp = () => {
      try {
        if (timer !== undefined) clearTimeout(timer);
        stopWaiting?.();
      } catch (error) {
        process.emitWarning(`kernel-ipc could not clean up after ${syscall}: ${error}`);
      }
    };
    const settle = (result: R) => {
      let value: T;
      try {
        value = adopt(result);
      } catch (error) {
        reject(error);
        return;
      }
      resolve(value);
    };
    const stop = (error: Error) => {
      if (stoppedBy !== undefined) return;
      stoppedBy = error;
      if (id !== 0) {
        // A call still queued is gone at once; one in its system call is interrupted, and
        // reports whether it completed first.
        if (!native.waiterCancel(id)) return;
        delete pending[id];
      } else if (started) {
        return;
      }
      reject(error);
      cleanUp();
    };
    const onAbort = () => stop(abortError(reasonOf.call(signal)));
    if (signal !== undefined) stopWaiting = whenAborted(signal, onAbort);
    if (timeout !== undefined) {
      // The pending call keeps the process alive (or not, with ref: false), not the timer.
      timer = setTimeout(() => stop(timeoutError(syscall, timeout, subject)), timeout).unref();
    }

    const begin = () => {
      if (stoppedBy !== undefined) return;
      started = true;
      let result: R | number;
      try {
        result = start(ref);
      } catch (error) {
        failed(error);
        cleanUp();
        return;
      }
      if (typeof result !== 'number') {
        settle(result);
        cleanUp();
        return;
      }
      id = result;
      pending[id] = {
        syscall,
        complete(status, value) {
          if (status === DONE) settle(value as R);
          else if (status === CANCELLED) reject(stoppedBy ?? abortError(undefined));
          else failed(value);
          cleanUp();
        },
      };
    };
    if (after === undefined) begin();
    else then.call(after, begin, begin);
  });
}
