// System V semaphore sets: the sem* mirror, its promise version, SemaphoreSet and Mutex.
import { setTimeout as sleep } from 'node:timers/promises';
import { abortError, invalidArgType, invalidArgValue, invalidState, type IpcError, naming, outOfRange, timeoutError } from './errors';
import {
  createOrOpen, IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, IpcObject, type IpcSetOptions,
  type IpcTarget, permissionChanges, timeOf, validateTarget,
} from './ipc';
import { native, type SemidDs } from './native';
import {
  INT32_MAX, INT32_MIN, isIntegerIn, validateBoolean, validateFlagsIn, validateId, validateInteger, validateKey, validateMode,
  validateNumber, validateOptions,
} from './validate';
import { type ValidWaitOptions, validateWaitOptions, wait, type WaitOptions } from './waiter';

export type { SemidDs, WaitOptions };

/** semop: undo the operation when the process exits. */
export const SEM_UNDO = 0x1000;
export const GETPID = 11;
export const GETVAL = 12;
export const GETALL = 13;
export const GETNCNT = 14;
export const GETZCNT = 15;
export const SETVAL = 16;
export const SETALL = 17;
export const SEM_STAT = 18;
export const SEM_INFO = 19;

export const semConstants = {
  SEM_UNDO, GETPID, GETVAL, GETALL, GETNCNT, GETZCNT, SETVAL, SETALL, SEM_STAT, SEM_INFO,
} as const;

/** The largest value a semaphore holds: a kernel limit (IPC_INFO's semvmx), fixed in Linux. */
export const SEMVMX = 32767;

/**
 * One operation of a semop, C's struct sembuf: on semaphore `num`, `op` > 0 adds to its value,
 * `op` < 0 waits until it can subtract, 0 waits until the value is zero.
 */
export interface SemOp {
  num: number;
  op: number;
  /** IPC_NOWAIT and SEM_UNDO. */
  flags?: number;
}

/** semctl(index, 0, SEM_STAT): the set at a kernel table index, and its id. */
export interface SemidDsWithId extends SemidDs {
  id: number;
}

/**
 * semctl(0, 0, IPC_INFO) and semctl(0, 0, SEM_INFO): struct seminfo, the limits semmsl (most
 * semaphores in a set), semmns (in all), semmni (most sets), semopm (most operations per
 * semop) and semvmx (largest value). With SEM_INFO, semusz is the number of sets and semaem
 * the number of semaphores.
 */
export interface SemInfo {
  semmap: number;
  semmni: number;
  semmns: number;
  semmnu: number;
  semmsl: number;
  semopm: number;
  semume: number;
  semusz: number;
  semvmx: number;
  semaem: number;
  /** The highest index in use in the kernel's table, for iterating with SEM_STAT. */
  highestIndex: number;
}

const semgetFlags = 0o777 | IPC_CREAT | IPC_EXCL;
const semopFlags = IPC_NOWAIT | SEM_UNDO;
const SEMNUM_MAX = 0xffff;
const SHRT_MIN = -0x8000;
const SHRT_MAX = 0x7fff;
/** semtimedop takes nanoseconds; milliseconds beyond this would lose whole ones. */
const TIMEOUT_MS_MAX = Number.MAX_SAFE_INTEGER / 1e6;

/** Create or open a set of `nsems` semaphores (0 to open any); returns its semid. */
export function semget(key: number, nsems: number, flags: number): number {
  validateKey(key);
  validateInteger(nsems, 'nsems', 0, INT32_MAX);
  validateFlagsIn(flags, semgetFlags, 'permission bits and semget flags');
  try {
    return native.semget(key | 0, nsems, flags);
  } catch (error) {
    throw naming(error, { key: key | 0 });
  }
}

/** The most operations one semop takes here; the kernel's own limit (semopm) is usually 500. */
const SEMOPS_MAX = 0xffff;

/**
 * `ops`, checked, as struct sembuf triples (num, op, flags). Each is read once, here: getters
 * in `ops` run now, and cannot change (or, by making semops of their own, overwrite) what is
 * passed to the addon.
 */
function checkOps(ops: unknown): number[] {
  if (!Array.isArray(ops)) throw invalidArgType('ops', 'an array of { num, op, flags }', ops);
  const count = ops.length;
  if (count === 0) throw invalidArgValue('ops', ops, 'must hold at least one operation');
  if (count > SEMOPS_MAX) throw outOfRange('ops.length', `<= ${SEMOPS_MAX}`, count);
  const triples = new Array<number>(3 * count);
  for (let i = 0; i < count; i++) {
    const entry: unknown = ops[i];
    if (typeof entry !== 'object' || entry === null) throw invalidArgType(`ops[${i}]`, 'of type object', entry);
    const { num, op, flags = 0 } = entry as SemOp;
    if (!isIntegerIn(num, 0, SEMNUM_MAX)) validateInteger(num, `ops[${i}].num`, 0, SEMNUM_MAX);
    if (!isIntegerIn(op, SHRT_MIN, SHRT_MAX)) validateInteger(op, `ops[${i}].op`, SHRT_MIN, SHRT_MAX);
    if (flags !== 0) validateFlagsIn(flags, semopFlags, 'IPC_NOWAIT and SEM_UNDO', `ops[${i}].flags`);
    triples[3 * i] = num;
    triples[3 * i + 1] = op;
    triples[3 * i + 2] = flags;
  }
  return triples;
}

/**
 * Writes checked operations where the addon reads them, and returns how many there are: call
 * it right before the addon does. The array is one per environment, handed to the addon once
 * (which saves reading a typed array on every call) and kept on the addon's exports, so that
 * every copy of this module writes the array the addon reads.
 */
function packed(triples: number[]): number {
  let array = native.semops;
  if (array === undefined || array.length < triples.length) {
    array = new Uint16Array(new ArrayBuffer(2 * Math.max(triples.length, 3 * 8)));
    native.semopBuffer(array);
    native.semops = array;
  }
  for (let i = 0; i < triples.length; i++) array[i] = triples[i];
  return triples.length / 3;
}

/** The addon's timeout: -1 for none. */
function timeoutOf(timeoutMs: unknown): number {
  return timeoutMs === undefined ? -1 : validateNumber(timeoutMs, 'timeoutMs', 0, TIMEOUT_MS_MAX);
}

/**
 * Apply `ops` atomically: all of them or none. Blocks until they can be applied, unless an
 * operation that would wait has IPC_NOWAIT (then EAGAIN). With `timeoutMs` (fractions allowed)
 * it is semtimedop, which fails with EAGAIN once that time has passed.
 */
export function semop(semid: number, ops: SemOp[], timeoutMs?: number): void {
  validateId(semid, 'semid');
  const timeout = timeoutOf(timeoutMs);
  const triples = checkOps(ops);
  try {
    native.semop(semid, packed(triples), timeout);
  } catch (error) {
    throw naming(error, { id: semid });
  }
}

/** kernel-ipc/promises semop: resolves once the operations are applied. */
export function semopAsync(semid: number, ops: SemOp[], options?: WaitOptions): Promise<void>;
export function semopAsync(semid: number, ops: SemOp[], timeoutMs?: number, options?: WaitOptions): Promise<void>;
export function semopAsync(semid: number, ops: SemOp[], timeoutMs?: number | WaitOptions, options?: WaitOptions): Promise<void> {
  if (typeof timeoutMs === 'object' && timeoutMs !== null && options === undefined) {
    options = timeoutMs;
    timeoutMs = undefined;
  }
  let timeout: number;
  let triples: number[];
  let waitOptions: ValidWaitOptions;
  try {
    validateId(semid, 'semid');
    timeout = timeoutOf(timeoutMs);
    triples = checkOps(ops);
    waitOptions = validateWaitOptions(options);
  } catch (error) {
    return Promise.reject(error);
  }
  const syscall = timeout < 0 ? 'semop' : 'semtimedop';
  return wait<void>(
    syscall,
    waitOptions,
    (ref) => native.semopAsync(semid, packed(triples), timeout, ref),
    undefined,
    undefined,
    { id: semid },
  );
}

const semctlCommands = new Set<number>([
  GETVAL, SETVAL, GETALL, SETALL, GETPID, GETNCNT, GETZCNT, IPC_STAT, SEM_STAT, IPC_SET, IPC_RMID, IPC_INFO, SEM_INFO,
]);

/**
 * Control a set or one of its semaphores (`semnum`), as semctl(2). GETALL and SETALL move the
 * values of every semaphore: SETALL needs exactly nsems of them (else EINVAL), each in
 * 0..SEMVMX (else ERANGE). IPC_INFO and SEM_INFO ignore semid and semnum.
 */
export function semctl(semid: number, semnum: number, cmd: typeof GETVAL | typeof GETPID | typeof GETNCNT | typeof GETZCNT): number;
export function semctl(semid: number, semnum: number, cmd: typeof SETVAL, arg: number): void;
export function semctl(semid: number, semnum: number, cmd: typeof GETALL): number[];
export function semctl(semid: number, semnum: number, cmd: typeof SETALL, arg: readonly number[]): void;
export function semctl(semid: number, semnum: number, cmd: typeof IPC_STAT): SemidDs;
export function semctl(index: number, semnum: number, cmd: typeof SEM_STAT): SemidDsWithId;
export function semctl(semid: number, semnum: number, cmd: typeof IPC_SET, arg: IpcSetOptions): void;
export function semctl(semid: number, semnum: number, cmd: typeof IPC_RMID): void;
export function semctl(semid: number, semnum: number, cmd: typeof IPC_INFO | typeof SEM_INFO): SemInfo;
export function semctl(semid: number, semnum: number, cmd: number, arg?: number | readonly number[] | IpcSetOptions): unknown;
export function semctl(semid: number, semnum: number, cmd: number, arg?: unknown): unknown {
  validateId(semid, 'semid');
  validateInteger(semnum, 'semnum', 0, INT32_MAX);
  validateInteger(cmd, 'cmd', 0, INT32_MAX);
  if (!semctlCommands.has(cmd)) throw invalidArgValue('cmd', cmd, 'must be one of the semctl commands');
  let value: number | Int32Array = 0;
  let changes = [-1, -1, -1];
  // A C int: the kernel answers ERANGE outside 0..SEMVMX.
  if (cmd === SETVAL) value = validateInteger(arg, 'arg', INT32_MIN, INT32_MAX);
  else if (cmd === SETALL) value = Int32Array.from(listOf(arg, 'arg', INT32_MIN, INT32_MAX));
  else if (cmd === IPC_SET) changes = permissionChanges(arg, 'arg');
  try {
    return native.semctl(semid, semnum, cmd, value, changes[0], changes[1], changes[2]);
  } catch (error) {
    // SEM_STAT takes a table index, and the INFO commands nothing.
    throw cmd === SEM_STAT || cmd === IPC_INFO || cmd === SEM_INFO ? error : naming(error, { id: semid });
  }
}

/** A list of values, copied (so each is read once, holes as undefined) and checked. */
function listOf(values: unknown, name: string, min: number, max: number): number[] {
  if (!Array.isArray(values)) throw invalidArgType(name, 'an array of numbers', values);
  const copy: unknown[] = Array.from(values);
  copy.forEach((value, i) => validateInteger(value, `${name}[${i}]`, min, max));
  return copy as number[];
}

export interface SemaphoreSetOpenSyncOptions {
  /**
   * Wait until the set's creator has initialised it, that is, until a semop has set its
   * otime (true unless given). Sets made by programs that do not follow that protocol (one
   * that only SETVALs, say) never qualify: open those with false.
   */
  waitForInit?: boolean;
  /** Milliseconds to wait for that, 10,000 unless given; then it fails with ETIMEDOUT. */
  timeout?: number;
}

export interface SemaphoreSetOpenOptions extends SemaphoreSetOpenSyncOptions {
  /** Stops waiting for the initialisation: the call rejects with an AbortError. */
  signal?: AbortSignal;
}

export interface SemaphoreSetCreateSyncOptions extends SemaphoreSetOpenSyncOptions {
  /** How many semaphores: 1 unless given, or the length of an `initialValue` list. */
  size?: number;
  /** The first value of every semaphore (a number), or of each (a list); 0 unless given. */
  initialValue?: number | readonly number[];
  /** Permission bits, 0o600 unless given. */
  mode?: number;
  /** Fail with EEXIST if the key is taken (the default); false opens that set instead. */
  exclusive?: boolean;
}

export interface SemaphoreSetCreateOptions extends SemaphoreSetCreateSyncOptions, SemaphoreSetOpenOptions {}

export interface SemaphoreWaitSyncOptions {
  /** Wait until the operation can be made (the default); false fails with EAGAIN instead. */
  block?: boolean;
  /** Milliseconds to wait; then it fails with a TimeoutError [ETIMEDOUT] and nothing was done. */
  timeout?: number;
}

export interface SemaphoreWaitOptions extends SemaphoreWaitSyncOptions, WaitOptions {}

export interface AcquireSyncOptions extends SemaphoreWaitSyncOptions {
  /** How much to take: 1 unless given. */
  delta?: number;
  /** Give it back if this process exits without releasing it (SEM_UNDO); release with undo too. */
  undo?: boolean;
}

export interface AcquireOptions extends AcquireSyncOptions, WaitOptions {}

export interface ReleaseOptions {
  /** Release what an acquire with `undo` took, so that the exit does not give it back again. */
  undo?: boolean;
}

const DEFAULT_INIT_TIMEOUT = 10_000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

function validateIndex(index: unknown): number {
  return isIntegerIn(index, 0, SEMNUM_MAX) ? index : validateInteger(index, 'index', 0, SEMNUM_MAX);
}

function validateTimeout(timeout: unknown): number | undefined {
  return timeout === undefined ? undefined : validateInteger(timeout, 'options.timeout', 0, INT32_MAX);
}

/** What waiting for a set's initialisation takes: no timeout means not waiting. */
interface InitWait {
  timeout: number | undefined;
  signal: AbortSignal | undefined;
}

function validateInitWait(options: SemaphoreSetOpenOptions): InitWait {
  const { waitForInit = true, timeout = DEFAULT_INIT_TIMEOUT, signal } = options;
  validateBoolean(waitForInit, 'options.waitForInit');
  validateInteger(timeout, 'options.timeout', 0, INT32_MAX);
  if (signal !== undefined) validateWaitOptions({ signal });
  return { timeout: waitForInit ? timeout : undefined, signal };
}

/**
 * A System V semaphore set, after Python's sysv_ipc and Perl's IPC::Semaphore. Semaphores are
 * numbered from 0; attributes are read from the kernel on every access.
 *
 * Creation is safe against the classic race (W. R. Stevens, UNIX Network Programming vol. 2,
 * 11.2): the creator makes the set with IPC_EXCL, sets its values and then makes a semop, which
 * sets otime; openers wait until otime is set, so none uses values not yet initialised.
 */
export class SemaphoreSet extends IpcObject<SemidDs> {
  private constructor(id: number, key: number) {
    super(id, key);
  }

  /**
   * Create a set under `key` (IPC_PRIVATE for a new anonymous one, none for a random unused
   * key), initialised. With `exclusive: false`, a set that exists is opened, once initialised.
   */
  static async create(key?: number | null, options?: SemaphoreSetCreateOptions): Promise<SemaphoreSet> {
    const validOptions = validateOptions<SemaphoreSetCreateOptions>(options);
    const init = validateInitWait(validOptions);
    // Aborted before it began, it makes nothing, as any promise call.
    if (init.signal?.aborted) throw abortError(init.signal.reason);
    const { set, opened } = SemaphoreSet.#make(key, validOptions);
    if (opened) await set.#initialised(init);
    return set;
  }

  /** create, blocking the thread while it waits for the initialisation of a set it opens. */
  static createSync(key?: number | null, options?: SemaphoreSetCreateSyncOptions): SemaphoreSet {
    const validOptions = validateOptions<SemaphoreSetCreateSyncOptions>(options);
    const { timeout } = validateInitWait({ ...validOptions, signal: undefined });
    const { set, opened } = SemaphoreSet.#make(key, validOptions);
    if (opened) set.#initialisedSync(timeout);
    return set;
  }

  /** Open the set under a key, or the one with an id (`{ id }`), once its creator has initialised it. */
  static async open(target: IpcTarget, options?: SemaphoreSetOpenOptions): Promise<SemaphoreSet> {
    const init = validateInitWait(validateOptions<SemaphoreSetOpenOptions>(options));
    const set = SemaphoreSet.#open(target);
    await set.#initialised(init);
    return set;
  }

  /** open, blocking the thread while it waits for the initialisation. */
  static openSync(target: IpcTarget, options?: SemaphoreSetOpenSyncOptions): SemaphoreSet {
    const { timeout } = validateInitWait({ ...validateOptions<SemaphoreSetOpenSyncOptions>(options), signal: undefined });
    const set = SemaphoreSet.#open(target);
    set.#initialisedSync(timeout);
    return set;
  }

  static #open(target: unknown): SemaphoreSet {
    const { key, id } = validateTarget(target, 'set');
    if (key !== undefined) return new SemaphoreSet(semget(key, 0, 0), key);
    return new SemaphoreSet(id, semctl(id, 0, IPC_STAT).key);
  }

  // Makes the set, or opens the one under the key (`opened`: it may not be initialised yet).
  static #make(key: unknown, options: SemaphoreSetCreateSyncOptions): { set: SemaphoreSet; opened: boolean } {
    const { size, initialValue = 0, mode = 0o600, exclusive = true } = options;
    const values = initialValues(size, initialValue);
    validateMode(mode, 'options.mode');
    validateBoolean(exclusive, 'options.exclusive');
    const made = createOrOpen(
      key as number | null | undefined,
      exclusive,
      (k) => semget(k, values.length, IPC_CREAT | IPC_EXCL | mode),
      (k) => semget(k, values.length, 0),
    );
    const set = new SemaphoreSet(made.id, made.key);
    if (!made.created) return { set, opened: true };
    try {
      semctl(made.id, 0, SETALL, values);
      // Any semop sets otime, the sign that the set is ready; this one changes no value. Adding
      // first fails only at SEMVMX (someone may have changed the value already), then taking
      // first cannot fail.
      try {
        semop(made.id, [{ num: 0, op: 1, flags: IPC_NOWAIT }, { num: 0, op: -1, flags: IPC_NOWAIT }]);
      } catch (error) {
        if ((error as IpcError).code !== 'ERANGE') throw error;
        semop(made.id, [{ num: 0, op: -1, flags: IPC_NOWAIT }, { num: 0, op: 1, flags: IPC_NOWAIT }]);
      }
    } catch (error) {
      set.remove();
      throw error;
    }
    return { set, opened: false };
  }

  #notInitialised(timeout: number): Error {
    return timeoutError('semget', timeout, { id: this.id }, `semaphore set ${this.id} was not initialised within ${timeout} ms (no semop has set its otime)`);
  }

  // A creator initialises right after it creates: polled with a backoff, on timers.
  async #initialised({ timeout, signal }: InitWait): Promise<void> {
    // Aborted before it began, it does nothing, as any promise call.
    if (signal?.aborted) throw abortError(signal.reason);
    if (timeout === undefined) return;
    const deadline = performance.now() + timeout;
    for (let delay = 1; this.stat().otime === 0; delay = Math.min(2 * delay, 50)) {
      const left = deadline - performance.now();
      if (left <= 0) throw this.#notInitialised(timeout);
      await sleep(Math.min(delay, left), undefined, { signal });
    }
  }

  // The same, blocking the thread.
  #initialisedSync(timeout: number | undefined): void {
    if (timeout === undefined) return;
    const deadline = performance.now() + timeout;
    for (let delay = 1; this.stat().otime === 0; delay = Math.min(2 * delay, 50)) {
      const left = deadline - performance.now();
      if (left <= 0) throw this.#notInitialised(timeout);
      sleepSync(Math.min(delay, left));
    }
  }

  /** The number of semaphores. */
  get size(): number {
    return this.stat().nsems;
  }

  getValue(index = 0): number {
    return semctl(this.id, validateIndex(index), GETVAL);
  }

  setValue(index: number, value: number): void {
    semctl(this.id, validateIndex(index), SETVAL, validateInteger(value, 'value', 0, SEMVMX));
  }

  /** Every semaphore's value (GETALL); set all at once (SETALL). */
  get values(): number[] {
    return semctl(this.id, 0, GETALL);
  }

  set values(values: readonly number[]) {
    semctl(this.id, 0, SETALL, listOf(values, 'values', 0, SEMVMX));
  }

  /** Apply `ops` atomically once they can be, waiting off the event loop; see kernel-ipc/promises semop. */
  async op(ops: SemOp[], options?: WaitOptions): Promise<void> {
    return semopAsync(this.id, ops, undefined, options);
  }

  /** op, blocking the thread while it waits. */
  opSync(ops: SemOp[], options?: { timeout?: number }): void {
    const { timeout } = validateOptions<{ timeout?: number }>(options);
    validateTimeout(timeout);
    const triples = checkOps(ops);
    try {
      native.semop(this.id, packed(triples), timeout ?? -1);
    } catch (error) {
      // Without IPC_NOWAIT, semtimedop's EAGAIN can only mean that the time ran out.
      const nowait = triples.some((flags, i) => i % 3 === 2 && (flags & IPC_NOWAIT) !== 0);
      if (timeout !== undefined && !nowait && (error as IpcError).code === 'EAGAIN') {
        throw timeoutError('semtimedop', timeout, { id: this.id });
      }
      throw naming(error, { id: this.id });
    }
  }

  /** Take `delta` (1) from semaphore `index`, waiting off the event loop while its value is too small. */
  acquire(index = 0, options?: AcquireOptions): Promise<void> {
    try {
      const { delta = 1, undo = false, block = true, ...waitOptions } = validateOptions<AcquireOptions>(options);
      const flags = undoFlag(undo) | blockFlag(block);
      return this.op([{ num: validateIndex(index), op: -validateDelta(delta), flags }], waitOptions);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** acquire, blocking the thread while it waits. */
  acquireSync(index = 0, options?: AcquireSyncOptions): void {
    const { delta = 1, undo = false, block = true, timeout } = validateOptions<AcquireSyncOptions>(options);
    const flags = undoFlag(undo) | blockFlag(block);
    this.opSync([{ num: validateIndex(index), op: -validateDelta(delta), flags }], { timeout });
  }

  /** Add `delta` (1) to semaphore `index`; this never waits. */
  release(index = 0, delta = 1, options?: ReleaseOptions): void {
    const { undo = false } = validateOptions<ReleaseOptions>(options);
    semop(this.id, [{ num: validateIndex(index), op: validateDelta(delta, 'delta'), flags: undoFlag(undo) }]);
  }

  /** Wait off the event loop until semaphore `index` is zero. */
  waitForZero(index = 0, options?: SemaphoreWaitOptions): Promise<void> {
    try {
      const { block = true, ...waitOptions } = validateOptions<SemaphoreWaitOptions>(options);
      return this.op([{ num: validateIndex(index), op: 0, flags: blockFlag(block) }], waitOptions);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** waitForZero, blocking the thread while it waits. */
  waitForZeroSync(index = 0, options?: SemaphoreWaitSyncOptions): void {
    const { block = true, timeout } = validateOptions<SemaphoreWaitSyncOptions>(options);
    this.opSync([{ num: validateIndex(index), op: 0, flags: blockFlag(block) }], { timeout });
  }

  /** How many are waiting for semaphore `index` to increase (GETNCNT). */
  waitingForIncrease(index = 0): number {
    return semctl(this.id, validateIndex(index), GETNCNT);
  }

  /** How many are waiting for semaphore `index` to be zero (GETZCNT). */
  waitingForZero(index = 0): number {
    return semctl(this.id, validateIndex(index), GETZCNT);
  }

  /** The process that last operated on semaphore `index` (GETPID); 0 if none has. */
  lastPid(index = 0): number {
    return semctl(this.id, validateIndex(index), GETPID);
  }

  /** When a semop last succeeded on the set. */
  get lastOpTime(): Date | null {
    return timeOf(this.stat().otime);
  }

  get changeTime(): Date | null {
    return timeOf(this.stat().ctime);
  }

  /** Remove the set now: waiting operations fail with EIDRM. */
  remove(): void {
    semctl(this.id, 0, IPC_RMID);
  }

  stat(): SemidDs {
    return semctl(this.id, 0, IPC_STAT);
  }

  protected set(changes: IpcSetOptions): void {
    semctl(this.id, 0, IPC_SET, changes);
  }
}

function initialValues(size: unknown, initialValue: unknown): number[] {
  if (Array.isArray(initialValue)) {
    const values = listOf(initialValue, 'options.initialValue', 0, SEMVMX);
    if (values.length === 0) throw invalidArgValue('options.initialValue', initialValue, 'must not be empty');
    if (values.length > SEMNUM_MAX + 1) throw outOfRange('options.initialValue.length', `<= ${SEMNUM_MAX + 1}`, values.length);
    if (size !== undefined) validateInteger(size, 'options.size', values.length, values.length);
    return values;
  }
  // semop addresses semaphores with an unsigned short: a set can use at most 65536 of them.
  const count = size === undefined ? 1 : validateInteger(size, 'options.size', 1, SEMNUM_MAX + 1);
  validateInteger(initialValue, 'options.initialValue', 0, SEMVMX);
  return new Array<number>(count).fill(initialValue as number);
}

function validateDelta(delta: unknown, name = 'options.delta'): number {
  return isIntegerIn(delta, 1, SEMVMX) ? delta : validateInteger(delta, name, 1, SEMVMX);
}

function undoFlag(undo: unknown): number {
  return validateBoolean(undo, 'options.undo') ? SEM_UNDO : 0;
}

function blockFlag(block: unknown): number {
  return validateBoolean(block, 'options.block') ? 0 : IPC_NOWAIT;
}

/** What Mutex.create takes: a set of one semaphore, free, is made. */
export type MutexCreateOptions = Omit<SemaphoreSetCreateOptions, 'size' | 'initialValue'>;
export type MutexCreateSyncOptions = Omit<SemaphoreSetCreateSyncOptions, 'size' | 'initialValue'>;

/**
 * The lock a Mutex holds, from lock(), lockSync() or tryLock(): `using` (or `await using`)
 * unlocks it at the end of the block, as unlock() does; either is a no-op once it is unlocked.
 */
export class MutexGuard {
  readonly #unlock: () => void;
  #locked = true;

  /** Not for use: guards come from Mutex#lock, lockSync and tryLock. */
  constructor(token: symbol, unlock: () => void) {
    if (token !== guarding) throw new TypeError('Illegal constructor: guards come from Mutex#lock');
    this.#unlock = unlock;
  }

  /** Whether this guard still holds the lock. */
  get locked(): boolean {
    return this.#locked;
  }

  unlock(): void {
    if (!this.#locked) return;
    this.#locked = false;
    this.#unlock();
  }

  [Symbol.dispose](): void {
    this.unlock();
  }
}

const guarding = Symbol('MutexGuard');

/**
 * A lock between processes (and threads) on one semaphore: 1 is free, 0 is held. It is taken
 * with SEM_UNDO, so the kernel releases it when a holder process dies, even by SIGKILL (not
 * when a worker thread ends: the kernel keeps SEM_UNDO per process).
 */
export class Mutex {
  readonly #semaphores: SemaphoreSet;
  readonly #index: number;
  #guard: MutexGuard | undefined;
  #waiting = 0;

  /** A lock on semaphore `index` of `semaphores`, whose value must start at 1. */
  constructor(semaphores: SemaphoreSet, index = 0) {
    if (!(semaphores instanceof SemaphoreSet)) throw invalidArgType('semaphores', 'an instance of SemaphoreSet', semaphores);
    this.#semaphores = semaphores;
    this.#index = validateIndex(index);
  }

  /** The set holding the lock's semaphore. */
  get semaphores(): SemaphoreSet {
    return this.#semaphores;
  }

  /** The lock's semaphore in `semaphores`. */
  get index(): number {
    return this.#index;
  }

  /** Create a lock under `key` (none for a random unused key), free. */
  static async create(key?: number | null, options?: MutexCreateOptions): Promise<Mutex> {
    return new Mutex(await SemaphoreSet.create(key, { ...validateOptions<MutexCreateOptions>(options), size: 1, initialValue: 1 }));
  }

  /** create, blocking the thread while it waits for the initialisation of a set it opens. */
  static createSync(key?: number | null, options?: MutexCreateSyncOptions): Mutex {
    return new Mutex(SemaphoreSet.createSync(key, { ...validateOptions<MutexCreateSyncOptions>(options), size: 1, initialValue: 1 }));
  }

  /** Open the lock under a key, or on the set with an id (`{ id }`). */
  static async open(target: IpcTarget, options?: SemaphoreSetOpenOptions): Promise<Mutex> {
    return new Mutex(await SemaphoreSet.open(target, options));
  }

  /** open, blocking the thread while it waits for the initialisation. */
  static openSync(target: IpcTarget, options?: SemaphoreSetOpenSyncOptions): Mutex {
    return new Mutex(SemaphoreSet.openSync(target, options));
  }

  /** The key of its semaphore set, to open the lock elsewhere. */
  get key(): number {
    return this.semaphores.key;
  }

  /** The id of its semaphore set, to open the lock elsewhere with `{ id }`. */
  get id(): number {
    return this.semaphores.id;
  }

  /** Whether this Mutex holds the lock. */
  get held(): boolean {
    return this.#guard !== undefined;
  }

  /** Take the lock, waiting off the event loop while another holds it. */
  async lock(options?: WaitOptions): Promise<MutexGuard> {
    const { signal, timeout, ref } = validateOptions<WaitOptions>(options);
    this.#waiting++;
    try {
      await this.semaphores.acquire(this.index, { signal, timeout, ref, undo: true });
    } finally {
      this.#waiting--;
    }
    return this.#hold();
  }

  /** lock, blocking the thread while another holds it. */
  lockSync(options?: { timeout?: number }): MutexGuard {
    if (this.#guard !== undefined || this.#waiting > 0) {
      throw invalidState('this Mutex is held or being waited for here: waiting again on this thread would never end');
    }
    this.semaphores.acquireSync(this.index, { undo: true, timeout: validateOptions<{ timeout?: number }>(options).timeout });
    return this.#hold();
  }

  /** Take the lock if it is free: its guard, or undefined if another holds it. */
  tryLock(): MutexGuard | undefined {
    if (this.#guard !== undefined) return undefined;
    try {
      this.semaphores.acquireSync(this.index, { undo: true, block: false });
    } catch (error) {
      if ((error as IpcError).code === 'EAGAIN') return undefined;
      throw error;
    }
    return this.#hold();
  }

  #hold(): MutexGuard {
    const guard = new MutexGuard(guarding, () => {
      if (this.#guard === guard) this.unlock();
    });
    this.#guard = guard;
    return guard;
  }

  /** Release the lock this Mutex holds. */
  unlock(): void {
    const guard = this.#guard;
    if (guard === undefined) throw invalidState('this Mutex does not hold the lock');
    this.#guard = undefined;
    guard.unlock();
    this.semaphores.release(this.index, 1, { undo: true });
  }

  /** Run `fn` (which may return a promise) holding the lock, and release it however `fn` ends. */
  async withLock<T>(fn: () => T | Promise<T>, options?: WaitOptions): Promise<T> {
    if (typeof fn !== 'function') throw invalidArgType('fn', 'of type function', fn);
    const guard = await this.lock(options);
    try {
      return await fn();
    } finally {
      guard.unlock();
    }
  }

  /** withLock, blocking the thread while it waits; `fn` runs synchronously. */
  withLockSync<T>(fn: () => T, options?: { timeout?: number }): T {
    if (typeof fn !== 'function') throw invalidArgType('fn', 'of type function', fn);
    const guard = this.lockSync(options);
    try {
      return fn();
    } finally {
      guard.unlock();
    }
  }

  /** Release the lock if this Mutex holds it. */
  [Symbol.dispose](): void {
    if (this.#guard !== undefined) this.unlock();
  }

  /** Remove the semaphore set: processes waiting for the lock fail with EIDRM. */
  remove(): void {
    this.semaphores.remove();
  }
}
