// Loads the addon (a matching prebuild, else the local build) and hands it the error class.
import { join } from 'node:path';
import { IpcError } from './errors';

export interface ShmidDs {
  key: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  mode: number;
  segsz: number;
  atime: number;
  dtime: number;
  ctime: number;
  cpid: number;
  lpid: number;
  nattch: number;
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
}

export const packageRoot = join(__dirname, '..', '..');

const load = require('node-gyp-build') as (dir: string) => Native;

export const native = load(packageRoot);
native.setErrorClass(IpcError);
