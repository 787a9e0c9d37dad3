// What every System V object shares: keys from ftok, and the IPC_* flags and commands.
import { randomInt } from 'node:crypto';
import { type IpcError, invalidArgType, invalidArgValue } from './errors';
import { type IpcPermissions, native } from './native';
import { ID_MAX, validateId, validateInteger, validateKey, validateMode, validateObject, validatePath } from './validate';

export const IPC_PRIVATE = 0;
export const IPC_CREAT = 0o1000;
export const IPC_EXCL = 0o2000;
export const IPC_NOWAIT = 0o4000;
export const IPC_RMID = 0;
export const IPC_SET = 1;
export const IPC_STAT = 2;
export const IPC_INFO = 3;
/** IPC_CREAT | IPC_EXCL: create, failing with EEXIST if the key is taken (sysv_ipc's name). */
export const IPC_CREX = IPC_CREAT | IPC_EXCL;
/** The range of key_t, a C int. Unsigned spellings up to 0xffffffff are read as the same key. */
export const KEY_MIN = -0x80000000;
export const KEY_MAX = 0x7fffffff;

export const ipcConstants = {
  IPC_PRIVATE, IPC_CREAT, IPC_EXCL, IPC_CREX, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO, KEY_MIN, KEY_MAX,
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

/** What a class opens: the object under a key, or the one with an id (`{ id }`). */
export type IpcTarget = number | { readonly id: number };

/** A checked target: `key` for the object under a key, `id` for one by id. */
export function validateTarget(target: unknown, what: string): { key: number; id?: undefined } | { key?: undefined; id: number } {
  if (typeof target === 'object' && target !== null) {
    return { id: validateId((target as { id: unknown }).id, 'id') };
  }
  if (typeof target !== 'number') throw invalidArgType('key', 'of type number, or { id }', target);
  const key = validateKey(target, 'key');
  // *get(IPC_PRIVATE, ...) would make a new object, not open one.
  if (key === IPC_PRIVATE) throw invalidArgValue('key', target, `must not be IPC_PRIVATE, which always makes a new ${what}`);
  return { key };
}

const RANDOM_KEY_TRIES = 1000;

/**
 * Makes an object with `create(key)` (IPC_CREAT | IPC_EXCL) under `key`, or, unless `exclusive`,
 * opens the one that holds it with `open(key)`. With no key (null or undefined), under a random
 * unused one, as sysv_ipc does.
 */
export function createOrOpen(
  key: number | null | undefined,
  exclusive: boolean,
  create: (key: number) => number,
  open: (key: number) => number,
): { id: number; key: number; created: boolean } {
  if (key === undefined || key === null) return createRandom(create);
  key = validateKey(key);
  for (;;) {
    try {
      return { id: create(key), key, created: true };
    } catch (error) {
      if (exclusive || (error as IpcError).code !== 'EEXIST') throw error;
    }
    try {
      return { id: open(key), key, created: false };
    } catch (error) {
      // Removed between the two calls: create it again.
      if ((error as IpcError).code !== 'ENOENT') throw error;
    }
  }
}

function createRandom(create: (key: number) => number): { id: number; key: number; created: true } {
  for (let tries = 1; ; tries++) {
    let key = IPC_PRIVATE;
    while (key === IPC_PRIVATE) key = randomInt(KEY_MIN, KEY_MAX + 1);
    try {
      return { id: create(key), key, created: true };
    } catch (error) {
      if ((error as IpcError).code !== 'EEXIST' || tries === RANDOM_KEY_TRIES) throw error;
    }
  }
}

/**
 * What the classes share, after Python's sysv_ipc: the id, and the key, owner and mode read
 * from the kernel (IPC_STAT) on every access and written with IPC_SET.
 */
export abstract class IpcObject<S extends IpcPermissions> {
  readonly #id: number;
  readonly #key: number;

  protected constructor(id: number, key: number) {
    this.#id = id;
    this.#key = key;
  }

  /** The kernel's identifier, as ipcs lists it; another process can open the object by it. */
  get id(): number {
    return this.#id;
  }

  /** The key it was created or opened with (IPC_PRIVATE, 0, for a private one), after remove() too. */
  get key(): number {
    return this.#key;
  }

  /** The raw IPC_STAT record. */
  abstract stat(): S;

  protected abstract set(changes: IpcSetOptions): void;

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
