#ifndef KERNEL_IPC_FUTEX_H_
#define KERNEL_IPC_FUTEX_H_

#include <napi.h>

namespace kernel_ipc {

// The kernel's futex on a 32-bit word of a shared attachment: shared (not
// FUTEX_PRIVATE_FLAG), so waiters and wakers in other processes, C programs
// included, meet on the same word. Results are Atomics.wait's: "ok" (woken),
// "not-equal" (the word was not `expected`), "timed-out".

// futexWait(view: Int32Array, index, expected, timeoutMs): the result; blocks
// the calling thread. timeoutMs < 0 waits for ever.
Napi::Value FutexWait(const Napi::CallbackInfo& info);
// futexWaitAsync(view, index, expected, timeoutMs, ref): the result if it
// need not wait, else the id of a waiter call that resolves with it.
Napi::Value FutexWaitAsync(const Napi::CallbackInfo& info);
// futexWake(view, index, count): how many waiters it woke.
Napi::Value FutexWake(const Napi::CallbackInfo& info);
// schedYield(): gives the CPU to another thread ready to run on it, if any, as
// a spin that waits for another process must (that process may be queued on
// this very CPU).
Napi::Value SchedYield(const Napi::CallbackInfo& info);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_FUTEX_H_
