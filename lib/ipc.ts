// What every System V object shares: keys from ftok, and the IPC_* flags and commands.
import { type IpcPermissions, native } from './native';
import { ID_MAX, validateInteger, validateMode, validateObject, validatePath } from './validate';

export const IPC_PRIVATE = 0;
export const IPC_CREAT = 0o1000;
export const IPC_EXCL = 0o2000;
export const IPC_NOWAIT = 0o4000;
export const IPC_RMID = 0;
export const IPC_SET = 1;
export const IPC_STAT = 2;
export const IPC_INFO = 3;

export const ipcConstants = {
  IPC_PRIVATE, IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO,
} as const;

/**
 * The key C's ftok(3) makes from an existing file and a project id (1-255): the low 8 bits
 * of projId, the low 8 bits of the file's device and the low 16 bits of its inode.
 */
export function ftok(path: string, projId: number): number {
  return native.ftok(validatePath(path), validateInteger(projId, 'projId', 1, 255));
}

export type { IpcPermissions };

/** *ctl(id, IPC_SET, buf): what to change; the rest stays. */
export interface IpcSetOptions {
  uid?: number;
  gid?: number;
  mode?: number;
}

/** IPC_SET's uid, gid and mode as the addon takes them: -1 keeps the current value. */
export function permissionChanges(buf: unknown, name = 'buf'): [uid: number, gid: number, mode: number] {
  const { uid, gid, mode } = validateObject<IpcSetOptions>(buf, name);
  return [
    uid === undefined ? -1 : validateInteger(uid, `${name}.uid`, 0, ID_MAX),
    gid === undefined ? -1 : validateInteger(gid, `${name}.gid`, 0, ID_MAX),
    mode === undefined ? -1 : validateMode(mode, `${name}.mode`),
  ];
}

/** A time from IPC_STAT: null until it first happens. */
export function timeOf(seconds: number): Date | null {
  return seconds === 0 ? null : new Date(seconds * 1000);
}

/**
 * Creates an object with `create()` (IPC_CREAT | IPC_EXCL), or, unless `exclusive`, opens the
 * one that holds the key with `open()`.
 */
export function createOrOpen(exclusive: boolean, create: () => number, open: () => number): { id: number; created: boolean } {
  for (;;) {
    try {
      return { id: create(), created: true };
    } catch (error) {
      if (exclusive || (error as { code?: string }).code !== 'EEXIST') throw error;
    }
    try {
      return { id: open(), created: false };
    } catch (error) {
      // Removed between the two calls: create it again.
      if ((error as { code?: string }).code !== 'ENOENT') throw error;
    }
  }
}

/**
 * What the classes share, after Python's sysv_ipc: the id, and the key, owner and mode read
 * from the kernel (IPC_STAT) on every access and written with IPC_SET.
 */
export abstract class IpcObject<S extends IpcPermissions> {
  readonly id: number;

  protected constructor(id: number) {
    this.id = id;
  }

  /** The raw IPC_STAT record. */
  abstract stat(): S;

  protected abstract set(changes: IpcSetOptions): void;

  /** The key; IPC_PRIVATE (0) for a private object or one marked for removal. */
  get key(): number {
    return this.stat().key;
  }

  /** Permission bits. */
  get mode(): number {
    return this.stat().mode & 0o777;
  }

  set mode(mode: number) {
    this.set({ mode: validateMode(mode) });
  }

  get uid(): number {
    return this.stat().uid;
  }

  set uid(uid: number) {
    this.set({ uid: validateInteger(uid, 'uid', 0, ID_MAX) });
  }

  get gid(): number {
    return this.stat().gid;
  }

  set gid(gid: number) {
    this.set({ gid: validateInteger(gid, 'gid', 0, ID_MAX) });
  }

  get cuid(): number {
    return this.stat().cuid;
  }

  get cgid(): number {
    return this.stat().cgid;
  }
}
