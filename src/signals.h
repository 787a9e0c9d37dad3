#ifndef KERNEL_IPC_SIGNALS_H_
#define KERNEL_IPC_SIGNALS_H_

#include <napi.h>
#include <stdint.h>

namespace kernel_ipc {

// signalsInit(): { rtmin, rtmax, reserved: [the waiters' wake signal, the
// signal that carries mask changes to other threads] }
Napi::Value SignalsInit(const Napi::CallbackInfo& info);
// sigprocmask(how, signals: number[]): the calling thread's previous mask;
// the change reaches every thread of the process (see signals.cc). EBUSY
// (syscall sigaction, path the file of the handler) when another library's
// handler holds the signal that carries changes.
Napi::Value Sigprocmask(const Napi::CallbackInfo& info);
// sigpending(): signals pending for the calling thread or the process
Napi::Value Sigpending(const Napi::CallbackInfo& info);
// sigqueue(pid, signal, value)
Napi::Value Sigqueue(const Napi::CallbackInfo& info);
// sigwaitinfoAsync(signals: number[], ref): { signo, code, pid, uid, value }
// if one was pending, else the id of a waiter call that resolves with it
Napi::Value SigwaitinfoAsync(const Napi::CallbackInfo& info);

}  // namespace kernel_ipc

// What a copy of kernel-ipc offers other copies loaded in the same process
// (see signals.cc). A C interface that only grows: later versions add fields
// at the end and raise `version`.
extern "C" {

struct KernelIpcSignals {
  uint32_t version;  // 1
  // sigprocmask(how, set) for every thread of the process, the set as bits
  // (bit n - 1 for signal n). Returns 0 or an errno: EBUSY when another
  // library's handler holds the signal that carries changes.
  int (*change_mask)(int how, uint64_t signals);
};

// Exported by name (a dynamic symbol, which stripping keeps).
__attribute__((visibility("default"))) const KernelIpcSignals* kernel_ipc_signals_v1();

}  // extern "C"

#endif  // KERNEL_IPC_SIGNALS_H_
