// System V message queues: the msg* mirror, its promise versions, and the MessageQueue class.
import { invalidArgValue, type IpcError, naming, outOfRange } from './errors';
import {
  createOrOpen, IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, IpcObject, type IpcSetOptions,
  type IpcTarget, permissionChanges, timeOf, validateTarget,
} from './ipc';
import { type MsqidDs, native, type ReceivedMessage } from './native';
import {
  INT32_MAX, toBytes, validateBoolean, validateFlagsIn, validateId, validateInteger, validateKey, validateMode,
  validateOptions,
} from './validate';
import { type ValidWaitOptions, validateWaitOptions, wait, type WaitOptions } from './waiter';

export type { MsqidDs, ReceivedMessage, WaitOptions };

/** msgrcv: truncate a message longer than maxBytes instead of failing with E2BIG. */
export const MSG_NOERROR = 0o10000;
/** msgrcv: with type > 0, take the first message of any other type. */
export const MSG_EXCEPT = 0o20000;
/** msgrcv: copy the message at index `type` without removing it (needs IPC_NOWAIT). */
export const MSG_COPY = 0o40000;
export const MSG_STAT = 11;
export const MSG_INFO = 12;

export const msgConstants = { MSG_NOERROR, MSG_EXCEPT, MSG_COPY, MSG_STAT, MSG_INFO } as const;

const msggetFlags = 0o777 | IPC_CREAT | IPC_EXCL;
const msgrcvFlags = IPC_NOWAIT | MSG_NOERROR | MSG_EXCEPT | MSG_COPY;
/** Message types are C longs; JavaScript numbers hold them exactly up to 2 ** 53 - 1. */
const TYPE_MAX = Number.MAX_SAFE_INTEGER;

/** msgctl(index, MSG_STAT): the queue at a kernel table index, and its id. */
export interface MsqidDsWithId extends MsqidDs {
  id: number;
}

/**
 * msgctl(0, IPC_INFO) and msgctl(0, MSG_INFO): struct msginfo. Both give the limits msgmax
 * (largest message), msgmnb (default qbytes of a new queue) and msgmni (most queues). With
 * MSG_INFO, msgpool is the number of queues, msgmap of messages and msgtql of bytes queued.
 */
export interface MsgInfo {
  msgpool: number;
  msgmap: number;
  msgmax: number;
  msgmnb: number;
  msgmni: number;
  msgssz: number;
  msgtql: number;
  msgseg: number;
  /** The highest index in use in the kernel's table, for iterating with MSG_STAT. */
  highestIndex: number;
}

/** msgctl(msqid, IPC_SET, buf): what to change; the rest stays. */
export interface MsgSetOptions extends IpcSetOptions {
  /** The most bytes the queue holds; above msgmnb needs CAP_SYS_RESOURCE. */
  qbytes?: number;
}

/** Create or open a queue; returns its msqid. */
export function msgget(key: number, flags: number): number {
  validateKey(key);
  validateFlagsIn(flags, msggetFlags, 'permission bits and msgget flags');
  try {
    return native.msgget(key | 0, flags);
  } catch (error) {
    throw naming(error, { key: key | 0 });
  }
}

/**
 * Send `data` (a string is UTF-8) as a message of `type` (>= 1). The payload is the bytes after
 * C's `long mtype`. Blocks while the queue is full, unless IPC_NOWAIT (then EAGAIN).
 */
export function msgsnd(msqid: number, type: number, data: string | ArrayBufferView, flags = 0): void {
  validateId(msqid, 'msqid');
  validateInteger(type, 'type', 1, TYPE_MAX);
  const bytes = toBytes(data);
  validateFlagsIn(flags, IPC_NOWAIT, 'msgsnd flags');
  try {
    native.msgsnd(msqid, type, bytes, flags);
  } catch (error) {
    throw naming(error, { id: msqid });
  }
}

/**
 * Receive a message of at most `maxBytes`: with type 0 the first one, with type > 0 the first
 * of that type (of any other with MSG_EXCEPT), with type < 0 the first of the lowest type
 * <= -type. A longer message stays queued and this fails with E2BIG, unless MSG_NOERROR
 * truncates it. Blocks until one comes, unless IPC_NOWAIT (then ENOMSG).
 */
export function msgrcv(msqid: number, maxBytes: number, type = 0, flags = 0): ReceivedMessage {
  validateReceive(msqid, maxBytes, type, flags);
  try {
    return native.msgrcv(msqid, maxBytes, type, flags);
  } catch (error) {
    throw naming(error, { id: msqid });
  }
}

function validateReceive(msqid: unknown, maxBytes: unknown, type: unknown, flags: unknown): void {
  validateId(msqid, 'msqid');
  validateInteger(maxBytes, 'maxBytes', 0, INT32_MAX);
  validateInteger(type, 'type', -TYPE_MAX, TYPE_MAX);
  validateFlagsIn(flags, msgrcvFlags, 'msgrcv flags');
}

const msgctlCommands = new Set<number>([IPC_STAT, MSG_STAT, IPC_SET, IPC_RMID, IPC_INFO, MSG_INFO]);

/** Control a queue, as msgctl(2). IPC_INFO and MSG_INFO ignore msqid. */
export function msgctl(msqid: number, cmd: typeof IPC_STAT): MsqidDs;
export function msgctl(index: number, cmd: typeof MSG_STAT): MsqidDsWithId;
export function msgctl(msqid: number, cmd: typeof IPC_SET, buf: MsgSetOptions): void;
export function msgctl(msqid: number, cmd: typeof IPC_RMID): void;
export function msgctl(msqid: number, cmd: typeof IPC_INFO | typeof MSG_INFO): MsgInfo;
export function msgctl(msqid: number, cmd: number, buf?: MsgSetOptions): MsqidDs | MsgInfo | void;
export function msgctl(msqid: number, cmd: number, buf?: MsgSetOptions): unknown {
  validateId(msqid, 'msqid');
  validateInteger(cmd, 'cmd', 0, INT32_MAX);
  if (!msgctlCommands.has(cmd)) throw invalidArgValue('cmd', cmd, 'must be one of the msgctl commands');
  let changes = [-1, -1, -1, -1];
  if (cmd === IPC_SET) {
    const permissions = permissionChanges(buf);
    const { qbytes } = buf as MsgSetOptions;
    changes = [...permissions, qbytes === undefined ? -1 : validateInteger(qbytes, 'buf.qbytes', 0, Number.MAX_SAFE_INTEGER)];
  }
  try {
    return native.msgctl(msqid, cmd, changes[0], changes[1], changes[2], changes[3]);
  } catch (error) {
    // MSG_STAT takes a table index, and the INFO commands nothing.
    throw cmd === MSG_STAT || cmd === IPC_INFO || cmd === MSG_INFO ? error : naming(error, { id: msqid });
  }
}

// Sends to one queue from this thread leave in call order: one that finds the queue full waits
// on a thread of ours, and later sends to that queue wait for it. By msqid, in an object without
// a prototype, chained with await and with slice taken at load: user code that replaces
// builtins must not leave a send half made.
const sendsWaiting: Record<number, Promise<void> | undefined> = Object.create(null);
const { slice } = Uint8Array.prototype;

/** Settles once both have, however they did. */
async function afterBoth(earlier: Promise<unknown> | undefined, sent: Promise<unknown>): Promise<void> {
  for (const send of [earlier, sent]) {
    try {
      await send;
    } catch {
      // The next send waits for this one either way.
    }
  }
}

/** kernel-ipc/promises msgsnd: resolves once the kernel has the message. */
export function msgsndAsync(
  msqid: number,
  type: number,
  data: string | ArrayBufferView,
  flags = 0,
  options?: WaitOptions,
): Promise<void> {
  let bytes: Uint8Array;
  let waitOptions: ValidWaitOptions;
  try {
    validateId(msqid, 'msqid');
    validateInteger(type, 'type', 1, TYPE_MAX);
    bytes = toBytes(data);
    validateFlagsIn(flags, IPC_NOWAIT, 'msgsnd flags');
    waitOptions = validateWaitOptions(options);
  } catch (error) {
    return Promise.reject(error);
  }
  const earlier = sendsWaiting[msqid];
  // Waiting its turn, the message is copied now, as it is when sent at once (toBytes gave a
  // view with bytes, whose buffer is attached).
  if (earlier !== undefined) bytes = slice.call(bytes);
  let waiting = false;
  const sent = wait<void>('msgsnd', waitOptions, (ref) => {
    const id = native.msgsndAsync(msqid, type, bytes, flags, ref);
    waiting = id !== undefined;
    return id;
  }, undefined, earlier, { id: msqid });
  if (earlier !== undefined || waiting) {
    const last = afterBoth(earlier, sent);
    sendsWaiting[msqid] = last;
    void (async () => {
      await last;
      if (sendsWaiting[msqid] === last) delete sendsWaiting[msqid];
    })();
  }
  return sent;
}

/** kernel-ipc/promises msgrcv: resolves with the message once there is one. */
export function msgrcvAsync(
  msqid: number,
  maxBytes: number,
  type = 0,
  flags = 0,
  options?: WaitOptions,
): Promise<ReceivedMessage> {
  let waitOptions: ValidWaitOptions;
  try {
    validateReceive(msqid, maxBytes, type, flags);
    waitOptions = validateWaitOptions(options);
  } catch (error) {
    return Promise.reject(error);
  }
  return wait('msgrcv', waitOptions, (ref) => native.msgrcvAsync(msqid, maxBytes, type, flags, ref), undefined, undefined, { id: msqid });
}

/** A received message. */
export class Message {
  constructor(
    readonly type: number,
    readonly data: Buffer,
  ) {}

  /** The payload as text, UTF-8 unless told. */
  text(encoding: BufferEncoding = 'utf8'): string {
    return this.data.toString(encoding);
  }
}

export interface MessageQueueCreateOptions {
  /** Permission bits, 0o600 unless given. */
  mode?: number;
  /** Fail with EEXIST if the key is taken (the default); false opens it instead. */
  exclusive?: boolean;
  /** The most bytes the queue holds (qbytes), if not the system's default (msgmnb). */
  maxBytes?: number;
}

export interface SendSyncOptions {
  /** The message type, >= 1; 1 unless given. */
  type?: number;
  /** Wait while the queue is full (the default); false fails with EAGAIN instead. */
  block?: boolean;
}

export interface ReceiveSyncOptions {
  /** Which message: 0 (the default) the first, > 0 the first of that type, < 0 the lowest type <= -type. */
  type?: number;
  /** Wait until there is one (the default); false fails with ENOMSG instead. */
  block?: boolean;
}

export interface SendOptions extends SendSyncOptions, WaitOptions {}

export interface ReceiveOptions extends ReceiveSyncOptions, WaitOptions {}

/** The system's largest message (msgmax); read again when a message turns out longer. */
let messageMax: number | undefined;

function messageMaxError(bytes: Uint8Array, max: number): RangeError {
  return outOfRange('data', `at most ${max} bytes (the system's maximum message size, kernel.msgmax)`, bytes.length);
}

function systemMessageMax(): number {
  messageMax ??= msgctl(0, IPC_INFO).msgmax;
  return messageMax;
}

/**
 * A System V message queue, after Python's sysv_ipc.MessageQueue. Attributes are read from
 * the kernel (IPC_STAT) on every access.
 */
export class MessageQueue extends IpcObject<MsqidDs> {
  private constructor(id: number, key: number) {
    super(id, key);
  }

  /**
   * Create a queue under `key`: IPC_PRIVATE for a new anonymous one, none (null or undefined)
   * for a random unused key.
   */
  static create(key?: number | null, options?: MessageQueueCreateOptions): MessageQueue {
    const { mode = 0o600, exclusive = true, maxBytes } = validateOptions<MessageQueueCreateOptions>(options);
    validateMode(mode, 'options.mode');
    validateBoolean(exclusive, 'options.exclusive');
    if (maxBytes !== undefined) validateInteger(maxBytes, 'options.maxBytes', 0, Number.MAX_SAFE_INTEGER);
    const made = createOrOpen(key, exclusive, (k) => msgget(k, IPC_CREAT | IPC_EXCL | mode), (k) => msgget(k, 0));
    const queue = new MessageQueue(made.id, made.key);
    if (made.created && maxBytes !== undefined) {
      try {
        queue.maxBytes = maxBytes;
      } catch (error) {
        queue.remove();
        throw error;
      }
    }
    return queue;
  }

  /** Open the existing queue under a key, or the one with an id (`{ id }`). */
  static open(target: IpcTarget): MessageQueue {
    const { key, id } = validateTarget(target, 'queue');
    if (key !== undefined) return new MessageQueue(msgget(key, 0), key);
    return new MessageQueue(id, msgctl(id, IPC_STAT).key);
  }

  /** The largest message this system takes (msgmax, /proc/sys/kernel/msgmax). */
  static get maxMessageSize(): number {
    return msgctl(0, IPC_INFO).msgmax;
  }

  /**
   * Send `data` (a string is UTF-8); resolves once the kernel has it. Waiting for room (unless
   * `block: false`) happens off the event loop.
   */
  async send(data: string | ArrayBufferView, options?: SendOptions): Promise<void> {
    const { type = 1, block = true, ...waitOptions } = validateOptions<SendOptions>(options);
    validateInteger(type, 'options.type', 1, TYPE_MAX);
    validateBoolean(block, 'options.block');
    const bytes = this.#sendable(data, block);
    try {
      await msgsndAsync(this.id, type, bytes, block ? 0 : IPC_NOWAIT, waitOptions);
    } catch (error) {
      throw this.#sendError(error, bytes, block);
    }
  }

  /** send, blocking the thread while the queue is full (unless `block: false`). */
  sendSync(data: string | ArrayBufferView, options?: SendSyncOptions): void {
    const { type = 1, block = true } = validateOptions<SendSyncOptions>(options);
    validateInteger(type, 'options.type', 1, TYPE_MAX);
    validateBoolean(block, 'options.block');
    const bytes = this.#sendable(data, block);
    try {
      msgsnd(this.id, type, bytes, block ? 0 : IPC_NOWAIT);
    } catch (error) {
      throw this.#sendError(error, bytes, block);
    }
  }

  /**
   * The next message (of `type`, if given), whatever its size. Waiting for one (unless
   * `block: false`) happens off the event loop.
   */
  async receive(options?: ReceiveOptions): Promise<Message> {
    const { type = 0, block = true, ...waitOptions } = validateOptions<ReceiveOptions>(options);
    validateInteger(type, 'options.type', -TYPE_MAX, TYPE_MAX);
    validateBoolean(block, 'options.block');
    for (let maxBytes = systemMessageMax(); ;) {
      try {
        const { type: received, data } = await msgrcvAsync(this.id, maxBytes, type, block ? 0 : IPC_NOWAIT, waitOptions);
        return new Message(received, data);
      } catch (error) {
        maxBytes = this.#largerReceive(error, maxBytes);
      }
    }
  }

  /** receive, blocking the thread until a message comes (unless `block: false`). */
  receiveSync(options?: ReceiveSyncOptions): Message {
    const { type = 0, block = true } = validateOptions<ReceiveSyncOptions>(options);
    validateInteger(type, 'options.type', -TYPE_MAX, TYPE_MAX);
    validateBoolean(block, 'options.block');
    for (let maxBytes = systemMessageMax(); ;) {
      try {
        const { type: received, data } = msgrcv(this.id, maxBytes, type, block ? 0 : IPC_NOWAIT);
        return new Message(received, data);
      } catch (error) {
        maxBytes = this.#largerReceive(error, maxBytes);
      }
    }
  }

  /**
   * Every message as it arrives (of `type`, if given), until the queue is removed; an abort
   * ends it with an AbortError.
   */
  async *messages(options?: ReceiveOptions): AsyncGenerator<Message, void, undefined> {
    for (;;) {
      try {
        yield await this.receive(options);
      } catch (error) {
        const code = (error as IpcError).code;
        if (code === 'EIDRM' || code === 'EINVAL') return;
        throw error;
      }
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<Message, void, undefined> {
    return this.messages();
  }

  /** Remove the queue now: waiting senders and receivers fail with EIDRM. */
  remove(): void {
    msgctl(this.id, IPC_RMID);
  }

  stat(): MsqidDs {
    return msgctl(this.id, IPC_STAT);
  }

  protected set(changes: MsgSetOptions): void {
    msgctl(this.id, IPC_SET, changes);
  }

  /** Messages on the queue now. */
  get currentMessages(): number {
    return this.stat().qnum;
  }

  /** Payload bytes on the queue now. */
  get currentBytes(): number {
    return this.stat().cbytes;
  }

  /** The most payload bytes the queue holds (qbytes). */
  get maxBytes(): number {
    return this.stat().qbytes;
  }

  set maxBytes(qbytes: number) {
    this.set({ qbytes: validateInteger(qbytes, 'maxBytes', 0, Number.MAX_SAFE_INTEGER) });
  }

  get lastSendPid(): number {
    return this.stat().lspid;
  }

  get lastReceivePid(): number {
    return this.stat().lrpid;
  }

  get lastSendTime(): Date | null {
    return timeOf(this.stat().stime);
  }

  get lastReceiveTime(): Date | null {
    return timeOf(this.stat().rtime);
  }

  get changeTime(): Date | null {
    return timeOf(this.stat().ctime);
  }

  // A message longer than the queue holds would wait for room for ever (and fail with EAGAIN
  // each time, not waiting). One over msgmax as well is refused for that first, as the kernel
  // would.
  #sendable(data: string | ArrayBufferView, block: boolean): Uint8Array {
    const bytes = toBytes(data);
    if (!block) return bytes;
    let qbytes: number;
    try {
      qbytes = this.maxBytes;
    } catch {
      // The queue is gone: let the send say so.
      return bytes;
    }
    if (bytes.length <= qbytes) return bytes;
    const max = MessageQueue.maxMessageSize;
    if (bytes.length > max) throw messageMaxError(bytes, max);
    throw outOfRange('data', `at most ${qbytes} bytes (the queue's maxBytes)`, bytes.length);
  }

  // Not waiting, a message the queue can never hold is EAGAIN too, and the kernel says EINVAL
  // for a message over msgmax: say which limit it was.
  #sendError(error: unknown, bytes: Uint8Array, block: boolean): unknown {
    if (!block && (error as IpcError).code === 'EAGAIN') this.#sendable(bytes, true);
    if ((error as IpcError).code !== 'EINVAL') return error;
    const max = MessageQueue.maxMessageSize;
    return bytes.length > max ? messageMaxError(bytes, max) : error;
  }

  // After E2BIG: msgmax may have grown, and no queued message is longer than the queue's bytes.
  #largerReceive(error: unknown, maxBytes: number): number {
    if ((error as IpcError).code !== 'E2BIG') throw error;
    messageMax = undefined;
    const larger = Math.min(Math.max(systemMessageMax(), this.currentBytes), INT32_MAX);
    if (larger <= maxBytes) throw error;
    return larger;
  }
}
