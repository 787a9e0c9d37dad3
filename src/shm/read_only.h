#ifndef KERNEL_IPC_SHM_READ_ONLY_H_
#define KERNEL_IPC_SHM_READ_ONLY_H_

#include <napi.h>
#include <stddef.h>

namespace kernel_ipc {

// A SHM_RDONLY mapping of `size` bytes at `address`, as an opaque External
// that only the addon reads through; it owns the mapping (and the map count
// taken for it) from here on.
Napi::Value MakeReadOnlyMapping(Napi::Env env, void* address, size_t size);

// Detaches the read-only mapping `value` is, if it is one: true if it was,
// throws EINVAL if it was detached already.
bool DetachReadOnlyMapping(Napi::Env env, Napi::Value value);

// shmReadOnlySize(mapping): its size in bytes, 0 once detached
Napi::Value ShmReadOnlySize(const Napi::CallbackInfo& info);
// shmReadOnlyCopy(mapping, sourceStart, count, target: Uint8Array, targetStart):
// bytes copied, or -1 (nothing copied) if a range is out of bounds or detached
Napi::Value ShmReadOnlyCopy(const Napi::CallbackInfo& info);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_SHM_READ_ONLY_H_
