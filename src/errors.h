#ifndef KERNEL_IPC_ERRORS_H_
#define KERNEL_IPC_ERRORS_H_

#include <napi.h>

namespace kernel_ipc {

// setErrorClass(IpcError): the JS class every failed syscall is reported with.
void SetErrorClass(const Napi::CallbackInfo& info);

// new IpcError(errnum, syscall, description[, path]) for a failed syscall.
Napi::Error ErrnoError(Napi::Env env, int errnum, const char* syscall,
                       const char* path = nullptr);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_ERRORS_H_
