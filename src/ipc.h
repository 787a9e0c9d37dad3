#ifndef KERNEL_IPC_IPC_H_
#define KERNEL_IPC_IPC_H_

#include <napi.h>
#include <sys/ipc.h>

namespace kernel_ipc {

// ftok(path: string, projId: number): number
Napi::Value Ftok(const Napi::CallbackInfo& info);

// What every *ctl(IPC_STAT) reports first: { key, uid, gid, cuid, cgid, mode }.
Napi::Object PermissionsToObject(Napi::Env env, const struct ipc_perm& perm);

// IPC_SET's uid, gid and mode, from info[first], info[first + 1] and
// info[first + 2], onto `perm`; -1 keeps the current value.
void ChangePermissions(const Napi::CallbackInfo& info, size_t first, struct ipc_perm& perm);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_IPC_H_
