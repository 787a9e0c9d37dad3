// kernel-ipc/promises: the calls that can block, as promises that never block the event loop
// nor libuv's threadpool. Each takes the mirror's arguments and then { signal, timeout, ref }.
// The declarations use Node's globals (Buffer, AbortSignal, ...): this brings them to consumers
// whose `types` is [], the default since TypeScript 6.
/// <reference types="node" preserve="true" />
export { msgrcvAsync as msgrcv, msgsndAsync as msgsnd } from './msg';
export type { ReceivedMessage } from './msg';
export { semopAsync as semop } from './sem';
export type { SemOp } from './sem';
export { sigwaitinfoAsync as sigwaitinfo } from './signals';
export type { Signal, SignalInfo } from './signals';
export type { WaitOptions } from './waiter';
