#ifndef KERNEL_IPC_MSG_H_
#define KERNEL_IPC_MSG_H_

#include <napi.h>

namespace kernel_ipc {

// msgget(key, flags): msqid
Napi::Value Msgget(const Napi::CallbackInfo& info);
// msgsnd(msqid, type, data: Uint8Array, flags); blocks unless IPC_NOWAIT
Napi::Value Msgsnd(const Napi::CallbackInfo& info);
// msgrcv(msqid, maxBytes, type, flags): { type, data: Buffer }
Napi::Value Msgrcv(const Napi::CallbackInfo& info);
// msgctl(msqid, cmd, uid, gid, mode, qbytes): the last four are for IPC_SET,
// where -1 keeps the current value
Napi::Value Msgctl(const Napi::CallbackInfo& info);
// msgsndAsync(msqid, type, data, flags, ref): undefined if sent at once, else
// the id of a waiter call that resolves with undefined
Napi::Value MsgsndAsync(const Napi::CallbackInfo& info);
// msgrcvAsync(msqid, maxBytes, type, flags, ref): the message if one was
// there, else the id of a waiter call that resolves with it
Napi::Value MsgrcvAsync(const Napi::CallbackInfo& info);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_MSG_H_
