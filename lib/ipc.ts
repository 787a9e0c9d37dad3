// What every System V object shares: keys from ftok, and the IPC_* flags and commands.
import { native } from './native';
import { validateInteger, validatePath } from './validate';

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
