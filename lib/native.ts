// Loads the addon (a matching prebuild, else the local build) and hands it the error class.
import { join } from 'node:path';
import { IpcError } from './errors';

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

/** What msgrcv returns: the message's type and its payload. */
export interface ReceivedMessage {
  type: number;
  data: Buffer;
}

/** A SHM_RDONLY mapping: an opaque handle that only the addon reads through. */
export type ReadOnlyMapping = { readonly __brand: 'ReadOnlyMapping' };

export interface Native {
  setErrorClass(errorClass: typeof IpcError): void;
  ftok(path: string, projId: number): number;
  shmget(key: number, size: number, flags: number): number;
  shmat(shmid: number, flags: number, maxLength: number): Buffer | ReadOnlyMapping;
  shmdt(attachment: ArrayBuffer | ReadOnlyMapping): void;
  shmctl(shmid: number, cmd: number, uid: number, gid: number, mode: number): unknown;
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
  /** onComplete(id, status, value): status 0 done (value: the result), 1 cancelled, 2 failed (value: the error). */
  waiterInit(onComplete: (id: number, status: number, value: unknown) => void): void;
  waiterCancel(id: number): void;
}

export const packageRoot = join(__dirname, '..', '..');

const load = require('node-gyp-build') as (dir: string) => Native;

export const native = load(packageRoot);
native.setErrorClass(IpcError);
