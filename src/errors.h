#ifndef KERNEL_IPC_ERRORS_H_
#define KERNEL_IPC_ERRORS_H_

#include <napi.h>

#include <string>

namespace kernel_ipc {

// setErrorClass(IpcError): the JS class every failed syscall is reported with.
void SetErrorClass(const Napi::CallbackInfo& info);

// new IpcError(errnum, syscall, description[, path]) for a failed syscall;
// the description is strerror's.
Napi::Error ErrnoError(Napi::Env env, int errnum, const char* syscall,
                       const char* path = nullptr);

// The same with a description of kernel-ipc's, where strerror's would not say
// what happened.
Napi::Error DescribedErrnoError(Napi::Env env, int errnum, const char* syscall,
                                const std::string& description, const char* path = nullptr);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_ERRORS_H_
