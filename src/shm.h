#ifndef KERNEL_IPC_SHM_H_
#define KERNEL_IPC_SHM_H_

#include <napi.h>

namespace kernel_ipc {

// shmget(key, size, flags): shmid
Napi::Value Shmget(const Napi::CallbackInfo& info);
// shmat(shmid, flags, maxLength): a Buffer over the whole segment, or with
// SHM_RDONLY an opaque read-only mapping that only native code reads.
Napi::Value Shmat(const Napi::CallbackInfo& info);
// shmdt(arrayBuffer | readOnlyMapping, holder?): detaches it and every view
// over it; holder is the ArrayBuffer that pending Node work may keep (the
// original, when arrayBuffer was moved out of it), by default arrayBuffer
Napi::Value Shmdt(const Napi::CallbackInfo& info);
// shmctl(shmid, cmd, uid, gid, mode): uid/gid/mode are for IPC_SET, -1 keeps
Napi::Value Shmctl(const Napi::CallbackInfo& info);
// shmIsAttachment(arrayBuffer): whether it is a live writable attachment
Napi::Value ShmIsAttachment(const Napi::CallbackInfo& info);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_SHM_H_
