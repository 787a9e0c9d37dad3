#ifndef KERNEL_IPC_ENV_DATA_H_
#define KERNEL_IPC_ENV_DATA_H_

#include <napi.h>

#include <memory>

#include "sem.h"
#include "waiter.h"

namespace kernel_ipc {

// What the addon keeps per environment (the main thread and each worker):
// the environment owns it and deletes it after every cleanup hook has run.
struct EnvData {
  // The JS class failed syscalls are reported with (setErrorClass).
  Napi::FunctionReference errorClass;
  // The operations of the next semop (semopBuffer).
  PackedSemops semops;
  // The threads blocking calls wait on (waiterInit).
  std::unique_ptr<WaiterPool> waiters;
};

inline EnvData& DataOf(Napi::Env env) { return *env.GetInstanceData<EnvData>(); }

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_ENV_DATA_H_
