// Signal masks for the whole process, pending signals, sigqueue, and taking blocked signals
// without a handler (src/signals.cc says how a mask reaches every thread).
import { constants } from 'node:os';
import { invalidArgType, invalidArgValue, invalidState, IpcError, unknownSignal } from './errors';
import { native, type NativeSiginfo } from './native';
import { INT32_MAX, INT32_MIN, validateInteger } from './validate';
import { validateWaitOptions, wait, type WaitOptions } from './waiter';

export const SIG_BLOCK = 0;
export const SIG_UNBLOCK = 1;
export const SIG_SETMASK = 2;

export const signalConstants = { SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK } as const;

/** A signal by name ('SIGUSR2'; real-time ones as 'SIGRTMIN+n' or 'SIGRTMAX-n', such as 'SIGRTMIN+20') or by number. */
export type Signal = string | number;

/** A signal taken by sigwaitinfo or watchSignals. */
export interface SignalInfo {
  /** Its name, as kill -l prints it: 'SIGUSR2', 'SIGRTMIN+3'. */
  signal: string;
  signo: number;
  /** si_code: 0 (SI_USER) from kill, -1 (SI_QUEUE) from sigqueue, -6 (SI_TKILL) from tgkill... */
  code: number;
  /** The sender's process id and real user id. */
  pid: number;
  uid: number;
  /** The number sent with sigqueue; undefined for signals sent otherwise. */
  value?: number;
}

const MAX_SIGNAL = 64;
const { rtmin: SIGRTMIN, rtmax: SIGRTMAX, reserved } = native.signalsInit();
// Names as kill -l prints them: aliases (SIGIOT, SIGPOLL) are accepted, not returned.
const names = new Map<number, string>();
const numbers = new Map<string, number>();
for (const [name, signo] of Object.entries(constants.signals)) {
  if (!names.has(signo)) names.set(signo, name);
  numbers.set(name, signo);
}
for (let signo = SIGRTMIN; signo <= SIGRTMAX; signo++) {
  const fromMin = signo - SIGRTMIN;
  const fromMax = SIGRTMAX - signo;
  const name = fromMin <= fromMax
    ? `SIGRTMIN${fromMin === 0 ? '' : `+${fromMin}`}`
    : `SIGRTMAX${fromMax === 0 ? '' : `-${fromMax}`}`;
  names.set(signo, name);
  numbers.set(name, signo);
  // kill -l counts from the nearer end; bash takes a count from either ('SIGRTMIN+20', 'SIGRTMAX-0').
  numbers.set(`SIGRTMIN+${fromMin}`, signo);
  numbers.set(`SIGRTMAX-${fromMax}`, signo);
}

const faults = ['SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGTRAP', 'SIGSYS'] as const;
const faultReason = `${faults.join(', ')} report a fault of the thread itself: Linux kills a process that faults `
  + 'with the signal blocked, and V8 turns WebAssembly out-of-bounds accesses into exceptions with SIGSEGV';
// Signals sigprocmask will not hold, and why.
const refused: ReadonlyMap<number, string> = new Map([
  [constants.signals.SIGKILL, 'SIGKILL and SIGSTOP cannot be blocked'],
  [constants.signals.SIGSTOP, 'SIGKILL and SIGSTOP cannot be blocked'],
  ...faults.map((name): [number, string] => [constants.signals[name], faultReason]),
  [constants.signals.SIGCHLD, 'libuv learns that a child exited from SIGCHLD: blocked or taken, '
    + "child_process 'exit' and 'close' events would stop"],
  ...reserved.map((signo): [number, string] => [signo, `${nameOf(signo)} is reserved by kernel-ipc`]),
  ...Array.from({ length: SIGRTMIN - 32 }, (_, i): [number, string] => [32 + i, `${32 + i} is reserved by the C library`]),
]);

function nameOf(signo: number): string {
  return names.get(signo) ?? String(signo);
}

/** A signal's number; `allowNull` admits 0, kill's "is the process there" signal. */
function signalNumber(value: unknown, name: string, allowNull = false): number {
  if (typeof value === 'string') {
    const signo = numbers.get(value);
    if (signo === undefined) throw unknownSignal(value);
    return signo;
  }
  if (typeof value === 'number') return validateInteger(value, name, allowNull ? 0 : 1, MAX_SIGNAL);
  throw invalidArgType(name, 'of type string or number', value);
}

/** Signals to block or wait for, as numbers: one signal or an array of them. */
function signalSet(value: unknown, name: string): number[] {
  const signals: unknown[] = Array.isArray(value) ? value : [value];
  const set = new Set<number>();
  // By index, so that a hole is an undefined entry, not skipped.
  for (let i = 0; i < signals.length; i++) {
    const signo = signalNumber(signals[i], `${name}[${i}]`);
    const reason = refused.get(signo);
    if (reason !== undefined) throw invalidArgValue(name, signals[i], `cannot hold ${nameOf(signo)}: ${reason}`);
    set.add(signo);
  }
  return [...set];
}

function signalNames(signos: number[]): string[] {
  return signos.map(nameOf);
}

const hows: Record<string, number> = { SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK };

/**
 * Blocks (SIG_BLOCK), unblocks (SIG_UNBLOCK) or sets (SIG_SETMASK) `signals` in every thread of
 * the process, so a blocked signal stays pending rather than reaching a thread that does not
 * block it; threads started later inherit the mask. Returns the previous mask, as names.
 * SIGKILL and SIGSTOP cannot be blocked: naming them is an error, as are the signals the runtime
 * depends on (the fault signals SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP and SIGSYS; SIGCHLD, which
 * child_process needs) and the two real-time signals kernel-ipc reserves (SIGRTMAX-2 and
 * SIGRTMAX-3). Threads that block every signal (the addon's waiters, Node's inspector signal
 * thread) keep blocking every signal. Copies of kernel-ipc loaded in the same process share one
 * mask; another library's handler for SIGRTMAX-3 makes it fail with ERR_INVALID_STATE.
 */
export function sigprocmask(how: number | 'SIG_BLOCK' | 'SIG_UNBLOCK' | 'SIG_SETMASK', signals: Signal | Signal[]): string[] {
  const howNumber = typeof how === 'string' ? hows[how] : how;
  if (howNumber !== SIG_BLOCK && howNumber !== SIG_UNBLOCK && howNumber !== SIG_SETMASK) {
    if (typeof how !== 'string' && typeof how !== 'number') throw invalidArgType('how', 'of type number or string', how);
    throw invalidArgValue('how', how, 'must be SIG_BLOCK, SIG_UNBLOCK or SIG_SETMASK');
  }
  const set = signalSet(signals, 'signals');
  try {
    return signalNames(native.sigprocmask(howNumber, set));
  } catch (error) {
    if (!(error instanceof IpcError && error.code === 'EBUSY')) throw error;
    const signal = nameOf(reserved[1]);
    throw invalidState(`${signal} is handled by another library (${error.path}): kernel-ipc carries mask changes to `
      + `every thread with ${signal}, and does not take it from another`);
  }
}

/** The signals pending for the calling thread or the process: raised while blocked. */
export function sigpending(): string[] {
  return signalNames(native.sigpending());
}

/** Sends `signal` to process `pid` with a number that travels with it (si_value.sival_int). */
export function sigqueue(pid: number, signal: Signal, value = 0): void {
  validateInteger(pid, 'pid', 1, INT32_MAX);
  const signo = signalNumber(signal, 'signal', true);
  native.sigqueue(pid, signo, validateInteger(value, 'value', INT32_MIN, INT32_MAX));
}

function toSignalInfo({ signo, code, pid, uid, value }: NativeSiginfo): SignalInfo {
  return { signal: nameOf(signo), signo, code, pid, uid, value };
}

/** The set to wait for, which must be blocked, or its signals would go to handlers instead. */
function waitableSet(signals: unknown): number[] {
  const set = signalSet(signals, 'signals');
  if (set.length === 0) throw invalidArgValue('signals', signals, 'must hold at least one signal');
  const blocked = new Set(native.sigprocmask(SIG_BLOCK, []));
  const unblocked = set.filter((signo) => !blocked.has(signo));
  if (unblocked.length > 0) {
    throw invalidState(`${signalNames(unblocked).join(', ')} must be blocked first (sigprocmask(SIG_BLOCK, ...)): `
      + 'a signal that is not blocked goes to its handler or its default action, not to a waiter');
  }
  return set;
}

function waitFor(set: number[], options: ReturnType<typeof validateWaitOptions>): Promise<SignalInfo> {
  return wait('sigwaitinfo', options, (ref) => native.sigwaitinfoAsync(set, ref), toSignalInfo);
}

/**
 * Takes one of `signals` (blocked ones) from the pending set, waiting if none is pending: the
 * signal is consumed, no handler runs. Rejects on `signal`/`timeout` only if none was taken.
 */
export function sigwaitinfoAsync(signals: Signal | Signal[], options?: WaitOptions): Promise<SignalInfo> {
  try {
    const set = waitableSet(signals);
    return waitFor(set, validateWaitOptions(options));
  } catch (error) {
    return Promise.reject(error);
  }
}

export interface WatchSignalsOptions {
  /** Ends the iteration: the pending `next()` rejects with an AbortError. */
  signal?: AbortSignal;
  /** Ms from now until the iteration ends: the pending `next()` rejects with a TimeoutError. */
  timeout?: number;
  /** Whether waiting keeps the process alive (default true). */
  ref?: boolean;
}

/**
 * `for await (const info of watchSignals(['SIGUSR1', 'SIGTERM']))`: each of `signals` (blocked
 * ones) as it arrives. A signal is taken only when the loop asks for the next one, so breaking
 * out leaves later signals pending; `return()` also ends a `next()` still waiting.
 */
export function watchSignals(signals: Signal | Signal[], options?: WatchSignalsOptions): AsyncIterableIterator<SignalInfo> {
  const set = waitableSet(signals);
  const { signal, ref, timeout } = validateWaitOptions(options);
  const deadline = timeout === undefined ? undefined : performance.now() + timeout;
  const ended = new AbortController();
  const stop = signal === undefined ? ended.signal : AbortSignal.any([signal, ended.signal]);
  const done: IteratorReturnResult<undefined> = { done: true, value: undefined };
  return {
    async next() {
      if (ended.signal.aborted) return done;
      const left = deadline === undefined ? undefined : Math.max(0, Math.ceil(deadline - performance.now()));
      try {
        return { done: false, value: await waitFor(set, { signal: stop, ref, timeout: left }) };
      } catch (error) {
        // Ended by return(), nothing taken; or by an error, after which it is done too.
        if (ended.signal.aborted) return done;
        ended.abort();
        throw error;
      }
    },
    async return() {
      ended.abort();
      return done;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
