// What both ends of a channel share: making or opening the segment and its doorbells, knowing
// whether the other end is there, and sleeping until it says so.
import { randomBytes } from 'node:crypto';
import { closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { invalidArgValue, invalidState } from '../errors';
import { createFifoReader, mkfifo, openFifoWriter } from '../fifo';
import * as futex from '../futex';
import { native } from '../native';
import { createOrOpen, IPC_CREAT, IPC_EXCL, IPC_RMID, IPC_STAT, type IpcTarget, validateTarget } from '../ipc';
import { shmat, shmctl, shmdt, shmget } from '../shm';
import { validateBoolean, validateInteger, validateMode, validateOptions } from '../validate';
import { validateWaitOptions, whenAborted } from '../waiter';
import {
  AWAKE, corrupt, HEADER_BYTES, MAGIC, MAX_CAPACITY, MIN_CAPACITY, ON_DOORBELL, ON_FUTEX, PREFIX_BYTES, PREFIX_OFFSET,
  SLEEP_COUNT, SLEEP_HOW, VERSION, W,
} from './layout';
import { Spin, wokeAnotherProcess } from './spin';

export type Side = 'writer' | 'reader';

export interface ChannelCreateOptions {
  /** The ring's bytes: a power of two from 4096 to 2^30; 1 MiB unless given. */
  capacity?: number;
  /** Permission bits of the segment and its doorbells, 0o600 unless given. */
  mode?: number;
}

/** What an end is made of, from create() or open(). */
export interface Parts {
  id: number;
  key: number;
  memory: Buffer;
  words: Int32Array;
  ring: Buffer;
  capacity: number;
  ownBell: Socket;
  peerBell: Socket | Promise<Socket>;
  /** The doorbells' paths, until the other end has opened the channel (and removed them). */
  prefix?: string;
}

const ONE = Buffer.from([1]);
/** How long a synchronous sleep lasts before it looks whether the other end is still there. */
const LIVENESS_SLICE_MS = 50;

function other(side: Side): Side {
  return side === 'writer' ? 'reader' : 'writer';
}

const slot = {
  writer: { pid: W.writerPid, closed: W.writerClosed, sleeps: W.writerSleeps },
  reader: { pid: W.readerPid, closed: W.readerClosed, sleeps: W.readerSleeps },
} as const;

/**
 * Whether process `pid` still runs (0: no process attached yet, which may come). A zombie
 * counts as gone: a parent blocked in a Sync call cannot reap its child meanwhile.
 */
function runs(pid: number): boolean {
  if (pid === 0) return true;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch (failure) {
      return (failure as { code?: string }).code !== 'ESRCH';
    }
  }
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state !== 'Z' && state !== 'X';
}

/** Error [ERR_CHANNEL_CLOSED]: this end is closed. */
function closedEnd(): Error {
  return Object.assign(invalidState('this end of the channel is closed'), { code: 'ERR_CHANNEL_CLOSED' });
}

/** Error [ERR_CHANNEL_CLOSED] or [ERR_CHANNEL_PEER_GONE]: the other end is not there any more. */
export function peerGone(side: Side, pid: number, closed: boolean): Error {
  const error = closed
    ? invalidState(`the channel's ${other(side)} closed it`)
    : invalidState(`the channel's ${other(side)} (pid ${pid}) is gone: it ended without closing the channel`);
  return Object.assign(error, { code: closed ? 'ERR_CHANNEL_CLOSED' : 'ERR_CHANNEL_PEER_GONE' });
}

export function createParts(side: Side, key: number | null | undefined, options: ChannelCreateOptions | undefined): Parts {
  const { capacity = 1024 * 1024, mode = 0o600 } = validateOptions<ChannelCreateOptions>(options);
  validateInteger(capacity, 'options.capacity', MIN_CAPACITY, MAX_CAPACITY);
  if ((capacity & (capacity - 1)) !== 0) throw invalidArgValue('options.capacity', capacity, 'must be a power of two');
  validateMode(mode, 'options.mode');
  const made = createOrOpen(key, true, (k) => shmget(k, HEADER_BYTES + capacity, IPC_CREAT | IPC_EXCL | mode), (k) => shmget(k, 0, 0));
  // Not the id alone: ids start again in every IPC namespace, and processes in two of them may
  // share a temporary directory.
  const prefix = join(tmpdir(), `kernel-ipc-channel-${made.id}-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fifos: string[] = [];
  let memory: Buffer | undefined;
  let ownBell: Socket | undefined;
  try {
    if (Buffer.byteLength(prefix) + '.writer'.length >= PREFIX_BYTES) throw invalidState(`the temporary directory's path is too long: ${prefix}`);
    for (const path of [`${prefix}.writer`, `${prefix}.reader`]) {
      mkfifo(path, mode);
      fifos.push(path);
    }
    memory = shmat(made.id);
    const words = new Int32Array(memory.buffer, memory.byteOffset, HEADER_BYTES / 4);
    memory.write(`${prefix}\0`, PREFIX_OFFSET);
    words[W.version] = VERSION;
    words[W.capacity] = capacity;
    words[W.headerBytes] = HEADER_BYTES;
    words[slot[side].pid] = process.pid;
    // Last: an end that opens the segment finds either no channel or a whole header.
    Atomics.store(words, W.magic, MAGIC);
    ownBell = createFifoReader(`${prefix}.${side}`);
    const peerBell = openFifoWriter(`${prefix}.${other(side)}`, { ref: false });
    return { id: made.id, key: made.key, memory, words, ring: memory.subarray(HEADER_BYTES), capacity, ownBell, peerBell, prefix };
  } catch (error) {
    ownBell?.destroy();
    if (memory !== undefined) shmdt(memory);
    shmctl(made.id, IPC_RMID);
    for (const path of fifos) rmSync(path, { force: true });
    throw error;
  }
}

export async function openParts(side: Side, target: IpcTarget): Promise<Parts> {
  const { key, id: given } = validateTarget(target, 'channel');
  const id = given ?? shmget(key!, 0, 0);
  const memory = shmat(id);
  let ownBell: Socket | undefined;
  let claimed: Int32Array | undefined;
  try {
    if (memory.length < HEADER_BYTES) throw corrupt(`segment ${id} is too small for a channel`);
    const words = new Int32Array(memory.buffer, memory.byteOffset, HEADER_BYTES / 4);
    if (Atomics.load(words, W.magic) !== MAGIC) throw corrupt(`segment ${id} holds no channel`);
    const capacity = words[W.capacity];
    if (words[W.version] !== VERSION || words[W.headerBytes] !== HEADER_BYTES) throw corrupt(`version ${words[W.version]} is not ${VERSION}`);
    if (capacity < MIN_CAPACITY || capacity > MAX_CAPACITY || (capacity & (capacity - 1)) !== 0 || memory.length < HEADER_BYTES + capacity) {
      throw corrupt(`its capacity ${capacity} does not fit segment ${id}`);
    }
    const end = memory.indexOf(0, PREFIX_OFFSET);
    if (end < 0 || end > PREFIX_OFFSET + PREFIX_BYTES - 1 - '.writer'.length) throw corrupt('its doorbell path is not terminated');
    const prefix = memory.toString('utf8', PREFIX_OFFSET, end);
    if (!prefix.startsWith('/')) throw corrupt(`its doorbell path ${JSON.stringify(prefix)} is not absolute`);
    const creator = Atomics.load(words, slot[other(side)].pid);
    if (!runs(creator)) {
      // It died before anyone opened the channel: nobody ever will, so what it made goes.
      for (const path of [`${prefix}.writer`, `${prefix}.reader`]) rmSync(path, { force: true });
      shmctl(id, IPC_RMID);
      throw peerGone(side, creator, false);
    }
    const write = Atomics.load(words, W.write) >>> 0;
    const read = Atomics.load(words, W.read) >>> 0;
    if ((write & 7) !== 0 || (read & 7) !== 0 || ((write - read) >>> 0) > capacity) {
      throw corrupt(`its positions (write ${write}, read ${read}) do not fit a ring of ${capacity}`);
    }
    if (Atomics.compareExchange(words, slot[side].pid, 0, process.pid) !== 0) {
      throw Object.assign(invalidState(`the channel already has a ${side} (pid ${words[slot[side].pid]})`), { code: 'ERR_CHANNEL_TAKEN' });
    }
    claimed = words;
    // The other end's doorbell first: opening this end's is what tells the creator that the
    // channel is connected, and it then removes both names.
    const peerBell = await openFifoWriter(`${prefix}.${other(side)}`, { timeout: 10_000 });
    try {
      ownBell = createFifoReader(`${prefix}.${side}`);
    } catch (error) {
      peerBell.destroy();
      throw error;
    }
    // Both ends are attached: the kernel frees the segment once both have gone, however they
    // go. (The creator removes the doorbells' names once it has opened this end's.)
    shmctl(id, IPC_RMID);
    return { id, key: key ?? shmctl(id, IPC_STAT).key, memory, words, ring: memory.subarray(HEADER_BYTES), capacity, ownBell, peerBell };
  } catch (error) {
    ownBell?.destroy();
    // Not opened after all: the side is free again.
    if (claimed !== undefined) Atomics.compareExchange(claimed, slot[side].pid, process.pid, 0);
    shmdt(memory);
    throw error;
  }
}

/** An end of a channel: its state in the header, its doorbells, and how it sleeps. */
export abstract class ChannelEnd {
  readonly #side: Side;
  readonly #id: number;
  readonly #key: number;
  readonly #memory: Buffer;
  protected readonly words: Int32Array;
  protected readonly ring: Buffer;
  /** The ring as words, for records' headers (word i is at byte 4i): cheaper than Buffer's readUInt32LE. */
  protected readonly ringWords: Int32Array;
  protected readonly capacity: number;
  readonly #ownBell: Socket;
  #peerBell: Socket | undefined;
  /** A descriptor of the other end's doorbell opened to ring it before #peerBell came. */
  #bellFd: number | undefined;
  readonly #peerBellOpening: Promise<Socket>;
  readonly #connected: Promise<void>;
  /** Settle `connected`, until it is settled. */
  #isConnected: (() => void) | undefined;
  #notConnected: ((error: Error) => void) | undefined;
  #wake: (() => void) | undefined;
  readonly #spin = new Spin();
  #sleeps = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #pending = 0;
  #bellEnded = false;
  #closed = false;
  #prefix: string | undefined;

  protected constructor(side: Side, parts: Parts) {
    this.#side = side;
    this.#id = parts.id;
    this.#key = parts.key;
    this.#memory = parts.memory;
    this.words = parts.words;
    this.ring = parts.ring;
    this.ringWords = new Int32Array(parts.ring.buffer, parts.ring.byteOffset, parts.capacity / 4);
    this.capacity = parts.capacity;
    this.#ownBell = parts.ownBell;
    this.#ownBell.on('data', () => this.#wakeUp());
    // Its end of file: the other end went (or, before it connected, gave up opening).
    const ended = () => {
      this.#bellEnded = true;
      // Closed: it had opened the channel, though this end's event loop may not have seen it yet.
      if (this.peerEnded()) this.#isConnected?.();
      else this.#notConnected?.(peerGone(this.#side, this.#peerPid(), false));
      this.#wakeUp();
    };
    this.#ownBell.on('end', ended);
    this.#ownBell.on('error', ended);
    this.#peerBellOpening = Promise.resolve(parts.peerBell);
    this.#connected = new Promise<void>((resolve, reject) => {
      this.#isConnected = resolve;
      this.#notConnected = reject;
      this.#peerBellOpening.then(() => (this.#closed ? reject(closedEnd()) : resolve()), reject);
    });
    // Settled for whoever asks; nobody need.
    this.#connected.catch(() => undefined);
    this.#prefix = parts.prefix;
    const connect = (bell: Socket) => {
      // Both doorbells are open at both ends: nothing needs their names any more.
      if (this.#prefix !== undefined) for (const path of [`${this.#prefix}.writer`, `${this.#prefix}.reader`]) rmSync(path, { force: true });
      this.#prefix = undefined;
      if (this.#closed) {
        bell.destroy();
        return;
      }
      this.#peerBell = bell.on('error', () => undefined);
      this.#isConnected = undefined;
      this.#notConnected = undefined;
      this.#closeBellFd();
    };
    // An end that opened the channel has the other's doorbell already; one that made it, later.
    if (parts.peerBell instanceof Promise) parts.peerBell.then(connect, () => undefined);
    else connect(parts.peerBell);
  }

  /** The segment's id, to open the other end with `{ id }`. */
  get id(): number {
    return this.#id;
  }

  /** The key it was created or opened with. */
  get key(): number {
    return this.#key;
  }

  /** Resolves once the other end has opened the channel. */
  get connected(): Promise<void> {
    return this.#connected;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether the other end closed the channel. */
  protected peerEnded(): boolean {
    return Atomics.load(this.words, slot[other(this.#side)].closed) === 1;
  }

  /**
   * Throws if the other end closed the channel or is gone, as far as this end knows without a
   * system call: its doorbell's end-of-file (which the event loop reads) says it went.
   */
  protected checkPeer(): void {
    const closed = this.peerEnded();
    if (closed || this.#bellEnded) throw peerGone(this.#side, this.#peerPid(), closed);
  }

  protected checkOpen(): void {
    if (this.#closed) throw closedEnd();
  }

  #peerPid(): number {
    return Atomics.load(this.words, slot[other(this.#side)].pid);
  }

  // The doorbell says so sooner, to async waits.
  #peerAlive(): boolean {
    return runs(this.#peerPid());
  }

  /**
   * Runs `operation` once this end's earlier promise calls are done, in call order. Its
   * options' timeout counts from now, and its signal (or the timeout) ends it while it waits
   * for its turn as well: it then does nothing when its turn comes.
   */
  protected serially<T>(options: ChannelWaitOptions | undefined, operation: (waiting: Waiting) => Promise<T>): Promise<T> {
    let waiting: Waiting;
    try {
      waiting = validateWaiting(options, true);
    } catch (error) {
      return Promise.reject(error);
    }
    const { stop } = waiting;
    let started = false;
    const turn = () => {
      if (stop?.aborted) throw this.stopped(waiting);
      started = true;
      return operation(waiting);
    };
    const run = this.#queue.then(turn, turn);
    this.#pending++;
    let done = run;
    if (stop !== undefined) {
      done = new Promise<T>((resolve, reject) => {
        const onAbort = () => {
          if (!started) reject(this.stopped(waiting));
        };
        const stopListening = stop.aborted ? undefined : whenAborted(stop, onAbort);
        if (stopListening === undefined) onAbort();
        run.then(resolve, reject).finally(() => stopListening?.());
      });
    }
    const settled = done.finally(() => {
      this.#pending--;
      waiting.end?.();
    });
    // The next call's turn comes once this one's operation is over and its promise settled, so
    // that the caller's reactions to it (reading a record, committing a reservation) come first.
    this.#queue = Promise.all([run.catch(() => undefined), settled.catch(() => undefined)]);
    return settled;
  }

  /** Why a call that was stopped ends: its timeout, or its signal's reason. */
  protected stopped(waiting: Waiting): unknown {
    const reason: unknown = waiting.stop!.reason;
    return reason === TIMED_OUT ? this.#stillThere(waiting.timeout) : reason;
  }

  /** EAGAIN, or with a timeout a TimeoutError: the ring stayed full (writer) or empty (reader). */
  #stillThere(timeout?: number): Error {
    return stillThere(this.#side === 'writer' ? 'full' : 'empty', timeout);
  }

  /** Whether no promise call of this end is pending: one may then be done at once, in order. */
  protected get idle(): boolean {
    return this.#pending === 0;
  }

  /**
   * Before a Sync call: one made while promise calls of this end are pending would take their
   * place in the ring behind their backs.
   */
  protected checkNoPending(): void {
    this.checkOpen();
    if (this.#pending > 0) throw invalidState('a promise call of this end of the channel is pending: wait for it before a Sync call');
  }

  /**
   * Until `ready()` may have come true: spins (unless spinFirst() did), then sleeps off the
   * event loop unless it came true meanwhile. Fails if the call may not wait, or no longer.
   */
  protected async waitFor(ready: () => boolean, waiting: Waiting, spin = true): Promise<void> {
    if (!waiting.block) throw this.#stillThere();
    try {
      if (!(spin && this.#spin.until(ready))) await this.sleep(ready, waiting.stop);
    } catch (error) {
      throw error === TIMED_OUT ? this.#stillThere(waiting.timeout) : error;
    } finally {
      this.#spin.waited();
    }
  }

  /**
   * The spin a promise call's wait begins with, done before the call takes its turn: whether
   * `ready()` came true, and so the call can settle at once, without a promise chain (which
   * costs more than the record). If not, its waitFor() goes straight to sleep.
   */
  protected spinFirst(ready: () => boolean): boolean {
    if (!this.#spin.until(ready)) return false;
    this.#spin.waited();
    return true;
  }

  /** waitFor, blocking the thread. */
  protected waitForSync(ready: () => boolean, waiting: Waiting): void {
    if (!waiting.block) throw this.#stillThere();
    try {
      if (!this.#spin.until(ready) && !this.sleepSync(ready, waiting.deadline)) throw this.#stillThere(waiting.timeout);
    } finally {
      this.#spin.waited();
    }
  }

  /**
   * After changing its position: wakes the other end if it said it sleeps, once per sleep. Only
   * the sleep it saw: if that one ended meanwhile (the exchange fails), any later sleep stored
   * its own word after this end's position, and so sees that position before it sleeps. (A
   * word that said only how it sleeps let a wake that came late take a later sleep's mark, and
   * that sleep then missed the next wake.)
   */
  protected wakePeer(): void {
    const sleeps = slot[other(this.#side)].sleeps;
    const asleep = Atomics.load(this.words, sleeps);
    if (asleep === AWAKE || Atomics.compareExchange(this.words, sleeps, asleep, AWAKE) !== asleep) return;
    wokeAnotherProcess();
    if ((asleep & SLEEP_HOW) === ON_FUTEX) {
      futex.notify(this.words, sleeps);
    } else {
      // One byte waiting in the FIFO (or still queued here) wakes it: more would only pile up,
      // for ever if the other end never reads them.
      if (this.#peerBell === undefined) this.#ringUnconnected();
      else if (this.#peerBell.writableLength === 0) this.#peerBell.write(ONE);
    }
  }

  /**
   * Rings the other end's doorbell before this end's event loop has learnt that the channel is
   * connected (a Sync call may be keeping it from learning it): through a descriptor of its
   * own, opened now, since the other end, asleep on its doorbell, has it open. It stays open
   * until the doorbell's socket comes: closing it before would be an end of file, which says
   * that this end is gone.
   */
  #ringUnconnected(): void {
    try {
      this.#bellFd ??= native.fifoOpen(`${this.#prefix}.${other(this.#side)}`, true);
      writeSync(this.#bellFd, ONE);
    } catch {
      // EAGAIN: bytes wait in it already, which wake it as well. Otherwise it is not there to
      // wake: it has closed its doorbell, and so its end.
    }
  }

  /**
   * Sleeps, blocking the thread, until `ready()` (which looks at what the other end wrote), or
   * `deadline` (performance.now()) passes; false then.
   */
  protected sleepSync(ready: () => boolean, deadline: number): boolean {
    const mine = slot[this.#side].sleeps;
    let asked = performance.now();
    try {
      for (;;) {
        const mark = this.#sleepMark(ON_FUTEX);
        Atomics.store(this.words, mine, mark);
        if (ready() || this.peerEnded()) return true;
        const now = performance.now();
        // After a slice without news (the event loop cannot read the doorbell meanwhile): ask
        // the kernel whether the other end still runs.
        if (now - asked >= LIVENESS_SLICE_MS) {
          if (!this.#peerAlive()) throw peerGone(this.#side, this.#peerPid(), false);
          asked = now;
        }
        if (deadline <= now) return false;
        // On the mark itself: a wake clears it before waking, so a wake that comes before this
        // wait begins (even one meant for what this end saw already) ends it at once, and it
        // marks itself again. A wait on the position would sleep through it, unmarked.
        futex.wait(this.words, mine, mark, { timeout: Math.min(deadline - now, LIVENESS_SLICE_MS) });
        if (ready()) return true;
      }
    } finally {
      Atomics.store(this.words, mine, AWAKE);
    }
  }

  /**
   * Sleeps, off the event loop, until the other end rings this end's doorbell or goes, unless
   * `ready()` came true since; rejects if `signal` aborts.
   */
  protected async sleep(ready: () => boolean, signal: AbortSignal | undefined): Promise<void> {
    const mine = slot[this.#side].sleeps;
    Atomics.store(this.words, mine, this.#sleepMark(ON_DOORBELL));
    try {
      // What changed, the caller looks at.
      if (ready() || this.peerEnded() || this.#bellEnded) return;
      await new Promise<void>((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        const stopListening = signal === undefined ? undefined : whenAborted(signal, () => reject(signal.reason));
        this.#wake = () => {
          stopListening?.();
          resolve();
        };
      });
    } finally {
      this.#wake = undefined;
      // Closed meanwhile: the words are unmapped, and the caller finds the end closed.
      if (!this.#closed) Atomics.store(this.words, mine, AWAKE);
    }
  }

  /** What this end's sleeps word says for a sleep: how it sleeps, and which sleep it is. */
  #sleepMark(how: number): number {
    this.#sleeps = (this.#sleeps + 1) & SLEEP_COUNT;
    return (this.#sleeps << 2) | how;
  }

  #closeBellFd(): void {
    if (this.#bellFd === undefined) return;
    closeSync(this.#bellFd);
    this.#bellFd = undefined;
  }

  #wakeUp(): void {
    this.#wake?.();
  }

  /** Closes this end: the other end finds the channel closed (and drains what is in it). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#notConnected?.(closedEnd());
    Atomics.store(this.words, slot[this.#side].closed, 1);
    // The other end may sleep, waiting for what will now never come.
    this.wakePeer();
    this.#peerBell?.end();
    this.#closeBellFd();
    this.#ownBell.destroy();
    this.#wakeUp();
    shmdt(this.#memory);
    if (this.#prefix !== undefined) {
      // Not connected: what this end made goes, and the open still waiting for a reader on the
      // other end's doorbell finds one, and ends.
      try {
        closeSync(native.fifoOpen(`${this.#prefix}.${other(this.#side)}`, false));
      } catch {
        // Gone already: so is the open.
      }
      for (const path of [`${this.#prefix}.writer`, `${this.#prefix}.reader`]) rmSync(path, { force: true });
      this.#prefix = undefined;
      try {
        shmctl(this.#id, IPC_RMID);
      } catch {
        // Removed by the other end, which came after all.
      }
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export interface ChannelWaitOptions {
  /** Wait (the default); false fails with EAGAIN instead. */
  block?: boolean;
  /** Milliseconds to wait; then it fails with a TimeoutError. */
  timeout?: number;
  /** Stops waiting (promise calls only): an AbortError. */
  signal?: AbortSignal;
}

/** A call's waiting, checked: a Sync call's until `deadline` (performance.now()), a promise's until `stop` aborts. */
export interface Waiting {
  readonly block: boolean;
  readonly timeout: number | undefined;
  readonly deadline: number;
  readonly stop: AbortSignal | undefined;
  /** Once the call is over: stops its timer. */
  readonly end?: () => void;
}

/** No options: wait as long as it takes (the common case, without an object per call; not frozen, which V8 makes slower to read). */
const UNTIL_READY: Waiting = { block: true, timeout: undefined, deadline: Infinity, stop: undefined };

/** The reason a promise call's own timer aborts it with: a TimeoutError then. */
const TIMED_OUT = Symbol('timed out');

export function validateWaiting(options: unknown, promise: boolean): Waiting {
  if (options === undefined) return UNTIL_READY;
  const { block = true, signal, timeout } = validateOptions<ChannelWaitOptions>(options);
  validateBoolean(block, 'options.block');
  if (timeout !== undefined) validateInteger(timeout, 'options.timeout', 0, 0x7fffffff);
  if (signal !== undefined) validateWaitOptions({ signal });
  const deadline = timeout === undefined ? Infinity : performance.now() + timeout;
  // Only a promise call needs a timer: a Sync one measures its deadline as it sleeps.
  if (timeout === undefined || !promise) return { block, timeout, deadline, stop: signal };
  // A timer of its own, cleared when the call ends: AbortSignal.timeout() and AbortSignal.any()
  // kept memory for every call on Node 20, long after it ended.
  const stop = new AbortController();
  const forward = () => stop.abort(signal!.reason);
  const timer = setTimeout(() => stop.abort(TIMED_OUT), timeout).unref();
  const stopForwarding = signal === undefined || signal.aborted ? undefined : whenAborted(signal, forward);
  if (signal?.aborted) forward();
  return {
    block,
    timeout,
    deadline,
    stop: stop.signal,
    end() {
      clearTimeout(timer);
      stopForwarding?.();
    },
  };
}

/** EAGAIN, or a TimeoutError: the channel stayed full (for the writer) or empty (the reader). */
function stillThere(state: 'full' | 'empty', timeout?: number): Error {
  if (timeout === undefined) {
    return Object.assign(new Error(`EAGAIN: resource temporarily unavailable, the channel is ${state}`), { code: 'EAGAIN' });
  }
  return Object.assign(new Error(`the channel was still ${state} after ${timeout} ms`), { name: 'TimeoutError', code: 'ETIMEDOUT' });
}
