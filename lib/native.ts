// Loads the addon (a matching prebuild, else the local build) and hands it the error class.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IpcError } from './errors';
import { packageRoot } from './package-root';

/** The owner and permissions every *ctl(IPC_STAT) reports. */
export interface IpcPermissions {
  key: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  mode: number;
}

export interface ShmidDs extends IpcPermissions {
  segsz: number;
  atime: number;
  dtime: number;
  ctime: number;
  cpid: number;
  lpid: number;
  nattch: number;
}

export interface MsqidDs extends IpcPermissions {
  qnum: number;
  qbytes: number;
  cbytes: number;
  lspid: number;
  lrpid: number;
  stime: number;
  rtime: number;
  ctime: number;
}

export interface SemidDs extends IpcPermissions {
  nsems: number;
  otime: number;
  ctime: number;
}

/** What msgrcv returns: the message's type and its payload. */
export interface ReceivedMessage {
  type: number;
  data: Buffer;
}

/** A signal taken by sigwaitinfo: `value` only when it was sent with sigqueue. */
export interface NativeSiginfo {
  signo: number;
  code: number;
  pid: number;
  uid: number;
  value?: number;
}

/** How a futex wait ended, as Atomics.wait says it. */
export type FutexOutcome = 'ok' | 'not-equal' | 'timed-out';

/** A SHM_RDONLY mapping: an opaque handle that only the addon reads through. */
export type ReadOnlyMapping = { readonly __brand: 'ReadOnlyMapping' };

export interface Native {
  setErrorClass(errorClass: typeof IpcError): void;
  ftok(path: string, projId: number): number;
  shmget(key: number, size: number, flags: number): number;
  shmat(shmid: number, flags: number, maxLength: number): Buffer | ReadOnlyMapping;
  /** holder: the ArrayBuffer pending Node work may keep, if not `attachment` itself. */
  shmdt(attachment: ArrayBuffer | ReadOnlyMapping, holder?: ArrayBuffer): void;
  shmctl(shmid: number, cmd: number, uid: number, gid: number, mode: number): unknown;
  /**
   * The ArrayBuffer JavaScript is handed for a new attachment: it keeps the mapping while it lives.
   * movable: whether ArrayBuffer#transfer exists, and so this is not Node's own ArrayBuffer.
   */
  shmAnchor(arrayBuffer: ArrayBuffer, movable: boolean): void;
  /** The environment is ending ('exit'): attachments whose memory moved to another thread are kept mapped. */
  shmEnding(): void;
  shmIsAttachment(arrayBuffer: ArrayBuffer): boolean;
  shmReadOnlySize(mapping: ReadOnlyMapping): number;
  shmReadOnlyCopy(mapping: ReadOnlyMapping, sourceStart: number, count: number, target: Uint8Array, targetStart: number): number;
  msgget(key: number, flags: number): number;
  msgsnd(msqid: number, type: number, data: Uint8Array, flags: number): void;
  msgrcv(msqid: number, maxBytes: number, type: number, flags: number): ReceivedMessage;
  msgctl(msqid: number, cmd: number, uid: number, gid: number, mode: number, qbytes: number): unknown;
  /** Undefined when sent at once, else the id of the waiter call. */
  msgsndAsync(msqid: number, type: number, data: Uint8Array, flags: number, ref: boolean): number | undefined;
  /** The message when one was waiting, else the id of the waiter call. */
  msgrcvAsync(msqid: number, maxBytes: number, type: number, flags: number, ref: boolean): number | ReceivedMessage;
  semget(key: number, nsems: number, flags: number): number;
  /** The array semop reads its operations from, as struct sembuf triples (num, op, flags). */
  semopBuffer(ops: Uint16Array): void;
  /** Set by lib/sem.ts: the array last handed to semopBuffer, shared by every copy of it. */
  semops?: Uint16Array;
  /** The first `count` operations of semopBuffer's array; timeoutMs < 0 waits for ever. */
  semop(semid: number, count: number, timeoutMs: number): void;
  /** Undefined when done at once, else the id of the waiter call. */
  semopAsync(semid: number, count: number, timeoutMs: number, ref: boolean): number | undefined;
  /** arg: SETVAL's value or SETALL's values; uid/gid/mode: IPC_SET's, -1 keeps. */
  semctl(semid: number, semnum: number, cmd: number, arg: number | Int32Array, uid: number, gid: number, mode: number): unknown;
  mkfifo(path: string, mode: number): void;
  /** A non-blocking descriptor; for writing, ENXIO while the FIFO has no reader. */
  futexWait(view: Int32Array, index: number, expected: number, timeoutMs: number): FutexOutcome;
  futexWaitAsync(view: Int32Array, index: number, expected: number, timeoutMs: number, ref: boolean): FutexOutcome | number;
  futexWake(view: Int32Array, index: number, count: number): number;
  schedYield(): void;
  fifoOpen(path: string, forWriting: boolean): number;
  /** { fd } when the FIFO has a reader, else the id of a waiter call that resolves with it. */
  fifoOpenWriterAsync(path: string, ref: boolean): number | { fd: number };
  /** The real-time range; reserved: the waiters' wake signal, and the one that carries mask changes. */
  signalsInit(): { rtmin: number; rtmax: number; reserved: number[] };
  /** The calling thread's previous mask; the change reaches every thread of the process. */
  sigprocmask(how: number, signals: number[]): number[];
  sigpending(): number[];
  sigqueue(pid: number, signo: number, value: number): void;
  /** The signal when one was pending, else the id of a waiter call that resolves with it. */
  sigwaitinfoAsync(signals: number[], ref: boolean): number | NativeSiginfo;
  /**
   * onComplete(id, status, value): status 0 done (value: the result), 1 cancelled, 2 failed (value: the error);
   * returns whether a call took the result (one nobody takes is given back).
   */
  waiterInit(onComplete: (id: number, status: number, value: unknown) => boolean): void;
  /** True if the call was still queued and is gone; else it completes through onComplete. */
  waiterCancel(id: number): boolean;
  /** Ends every waiting call and gives back what completed calls took but were never delivered. */
  waiterStop(): void;
  /** The main thread's process is exiting: blocking synchronous calls fail with EINTR. */
  interruptBlocking(): void;
}

export { packageRoot };

const { resolve } = require('node-gyp-build') as { resolve(dir: string): string };

/** Whether this process runs on musl: its C library is mapped, and glibc's is not (false without /proc). */
function onMusl(): boolean {
  let maps: string;
  try {
    maps = readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return false;
  }
  // A library replaced on disk since it was mapped shows as "<path> (deleted)".
  const files = maps.split('\n').map((line) => line.slice(line.lastIndexOf('/') + 1).replace(/ \(deleted\)$/, ''));
  return !files.some((file) => /^libc(\.so\.6|-[\d.]+\.so)$/.test(file)) && files.some((file) => /^(ld-musl-|libc\.musl-|libc\.so$)/.test(file));
}

// Its install script builds from src/ where no prebuild loads, but npm 11 (like pnpm and
// Bun) runs no dependency's install script until the project allows it.
const BUILD_IT = 'to build it from source (with python3, make and g++), allow its install script and run it: ' +
  'npm install-scripts approve kernel-ipc && npm rebuild kernel-ipc (for a global install: npm install -g --allow-scripts=kernel-ipc kernel-ipc)';

/**
 * The binary for this process. node-gyp-build takes a system for musl only when it is Alpine
 * (/etc/alpine-release), and elsewhere (Void, a distroless image) would pick the
 * glibc prebuild, which musl's loader may even load before it fails.
 */
function binaryPath(): string {
  let path: string;
  try {
    path = resolve(packageRoot);
  } catch (error) {
    const bundled = !existsSync(join(packageRoot, 'package.json')) ||
      (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { name?: string }).name !== 'kernel-ipc';
    const advice = bundled
      ? 'kernel-ipc was bundled, away from its binaries: mark it external in the bundler\'s options'
      : `kernel-ipc has no prebuilt binary for this system: ${BUILD_IT}`;
    throw new Error(`${(error as Error).message.trim()}\n${advice}`, { cause: error });
  }
  if (!path.endsWith('.glibc.node') || !onMusl()) return path;
  const musl = path.replace(/\.glibc\.node$/, '.musl.node');
  if (existsSync(musl)) return musl;
  throw new Error(`kernel-ipc has no prebuilt binary for musl on ${process.arch}: ${BUILD_IT}`);
}

declare const __webpack_require__: unknown;
declare const __non_webpack_require__: NodeJS.Require;
// Under webpack, Node's own require, as node-gyp-build does: the binary is not bundled.
const requireBinary = typeof __webpack_require__ === 'function' ? __non_webpack_require__ : require;

function loadBinary(path: string): Native {
  try {
    return requireBinary(path) as Native;
  } catch (error) {
    // The musl binaries need the C++ runtime Node has on Alpine; other musl systems may lack it.
    const needs = path.endsWith('.musl.node') ? ' (the musl binary needs libstdc++.so.6 and libgcc_s.so.1)' : '';
    throw new Error(`kernel-ipc could not load ${path}${needs}: ${(error as Error).message}\n${BUILD_IT}`, { cause: error });
  }
}

export const native = loadBinary(binaryPath());
native.setErrorClass(IpcError);
