#ifndef KERNEL_IPC_IPC_H_
#define KERNEL_IPC_IPC_H_

#include <napi.h>

namespace kernel_ipc {

// ftok(path: string, projId: number): number
Napi::Value Ftok(const Napi::CallbackInfo& info);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_IPC_H_
