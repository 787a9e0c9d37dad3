#ifndef KERNEL_IPC_IPC_H_
#define KERNEL_IPC_IPC_H_

#include <errno.h>
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

// The errno of a call that found its object and then had to wait. An id
// removed before the wait began is EINVAL to the kernel, one removed during it
// EIDRM; to the caller who was waiting, both are the object being removed.
inline int ErrnoAfterWaiting(int errnum) { return errnum == EINVAL ? EIDRM : errnum; }

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_IPC_H_
