// The public exports of kernel-ipc.
// The declarations use Node's globals (Buffer, AbortSignal, ...): this brings them to consumers
// whose `types` is [], the default since TypeScript 6.
/// <reference types="node" preserve="true" />
import { fifoConstants } from './fifo';
import { ipcConstants } from './ipc';
import { msgConstants } from './msg';
import { semConstants } from './sem';
import { shmConstants } from './shm';
import { signalConstants } from './signals';

export { IpcError } from './errors';
export { ChannelReader } from './channel/reader';
export { ChannelWriter } from './channel/writer';
export type { ChannelCreateOptions, ChannelWaitOptions } from './channel/end';
export { createFifoReader, mkfifo, openFifoWriter, PIPE_BUF } from './fifo';
export * as futex from './futex';
export type { FutexOutcome, FutexWaitAsyncOptions, FutexWaitOptions } from './futex';
export type { FifoReaderOptions } from './fifo';
export {
  ftok, IPC_CREAT, IPC_CREX, IPC_EXCL, IPC_INFO, IPC_NOWAIT, IPC_PRIVATE, IPC_RMID, IPC_SET, IPC_STAT, KEY_MAX, KEY_MIN,
} from './ipc';
export type { IpcPermissions, IpcSetOptions, IpcTarget } from './ipc';
export {
  Message, MessageQueue, msgctl, msgget, msgrcv, msgsnd, MSG_COPY, MSG_EXCEPT, MSG_INFO, MSG_NOERROR, MSG_STAT,
} from './msg';
export type {
  MessageQueueCreateOptions, MsgInfo, MsgSetOptions, MsqidDs, MsqidDsWithId, ReceivedMessage, ReceiveOptions,
  ReceiveSyncOptions, SendOptions, SendSyncOptions, WaitOptions,
} from './msg';
export {
  GETALL, GETNCNT, GETPID, GETVAL, GETZCNT, Mutex, MutexGuard, SemaphoreSet, semctl, semget, semop, SEMVMX, SEM_INFO, SEM_STAT,
  SEM_UNDO, SETALL, SETVAL,
} from './sem';
export type {
  AcquireOptions, AcquireSyncOptions, MutexCreateOptions, MutexCreateSyncOptions, ReleaseOptions, SemaphoreSetCreateOptions,
  SemaphoreSetCreateSyncOptions, SemaphoreSetOpenOptions, SemaphoreSetOpenSyncOptions, SemaphoreWaitOptions,
  SemaphoreWaitSyncOptions, SemidDs, SemidDsWithId, SemInfo, SemOp,
} from './sem';
export { ReadOnlyBuffer } from './read-only-buffer';
export {
  SharedMemory, shmat, shmctl, shmdt, shmget,
  SHM_HUGETLB, SHM_INFO, SHM_LOCK, SHM_NORESERVE, SHM_RDONLY, SHM_REMAP, SHM_RND, SHM_STAT, SHM_UNLOCK,
} from './shm';
export type {
  SharedMemoryCreateOptions, SharedMemoryOpenOptions, ShmidDs, ShmidDsWithId, ShmLimits,
  ShmSetOptions, ShmUsage,
} from './shm';
export {
  SIG_BLOCK, SIG_SETMASK, SIG_UNBLOCK, sigpending, sigprocmask, sigqueue, watchSignals,
} from './signals';
export type { Signal, SignalInfo, WatchSignalsOptions } from './signals';

/** Every constant, also exported by name. */
export const constants = Object.freeze({
  ...ipcConstants, ...shmConstants, ...msgConstants, ...semConstants, ...fifoConstants, ...signalConstants,
});
