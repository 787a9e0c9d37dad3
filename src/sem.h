#ifndef KERNEL_IPC_SEM_H_
#define KERNEL_IPC_SEM_H_

#include <napi.h>
#include <sys/sem.h>

namespace kernel_ipc {

// Where JavaScript packs the operations of a semop, as C's struct sembuf
// (num, op, flags): one array per environment, handed over once
// (semopBuffer) rather than with every call, which is measurably faster.
struct PackedSemops {
  Napi::Reference<Napi::Uint16Array> array;  // keeps `ops` alive
  struct sembuf* ops = nullptr;
  size_t capacity = 0;
};

// semopBuffer(array: Uint16Array): the array semop and semopAsync read
void SemopBuffer(const Napi::CallbackInfo& info);

// semget(key, nsems, flags): semid
Napi::Value Semget(const Napi::CallbackInfo& info);
// semop(semid, count, timeoutMs): the first `count` packed operations, applied
// atomically; blocks unless IPC_NOWAIT. timeoutMs >= 0 makes it semtimedop.
Napi::Value Semop(const Napi::CallbackInfo& info);
// semopAsync(semid, count, timeoutMs, ref): undefined if done at once,
// else the id of a waiter call that resolves with undefined
Napi::Value SemopAsync(const Napi::CallbackInfo& info);
// semctl(semid, semnum, cmd, arg, uid, gid, mode): arg is SETVAL's value or
// SETALL's Int32Array; uid/gid/mode are for IPC_SET, where -1 keeps
Napi::Value Semctl(const Napi::CallbackInfo& info);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_SEM_H_
