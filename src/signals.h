#ifndef KERNEL_IPC_SIGNALS_H_
#define KERNEL_IPC_SIGNALS_H_

#include <napi.h>

namespace kernel_ipc {

// signalsInit(): installs the handler sigprocmask relies on; returns
// { rtmin, rtmax, reserved: [the waiters' wake signal, the signal that
// carries mask changes to other threads] }
Napi::Value SignalsInit(const Napi::CallbackInfo& info);
// sigprocmask(how, signals: number[]): the calling thread's previous mask;
// the change reaches every thread of the process (see signals.cc)
Napi::Value Sigprocmask(const Napi::CallbackInfo& info);
// sigpending(): signals pending for the calling thread or the process
Napi::Value Sigpending(const Napi::CallbackInfo& info);
// sigqueue(pid, signal, value)
Napi::Value Sigqueue(const Napi::CallbackInfo& info);
// sigwaitinfoAsync(signals: number[], ref): { signo, code, pid, uid, value }
// if one was pending, else the id of a waiter call that resolves with it
Napi::Value SigwaitinfoAsync(const Napi::CallbackInfo& info);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_SIGNALS_H_
