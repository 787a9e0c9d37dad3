#ifndef KERNEL_IPC_WAITER_BLOCKING_H_
#define KERNEL_IPC_WAITER_BLOCKING_H_

#include <errno.h>
#include <napi.h>
#include <pthread.h>

namespace kernel_ipc {

// The signal that interrupts a waiter's system call: never blocked by the
// threads that wait, never to be blocked by sigprocmask.
int WakeSignal();
// Installs WakeSignal's handler (once): it does nothing, and without
// SA_RESTART, so that the system call it lands in returns EINTR.
void InstallWakeHandler();

// Starts a thread with every signal blocked, so that signals meant for the
// process are handled by Node's threads, never by the addon's; `stackSize` 0
// is the default. Returns 0 or pthread_create's errno.
int StartQuietThread(pthread_t* thread, void* (*main)(void*), void* arg, size_t stackSize = 0);

// Marks the current thread as in a synchronous mirror's blocking call while
// it lives, so that InterruptBlocking can reach it.
class BlockingSection {
 public:
  BlockingSection();
  ~BlockingSection();
  BlockingSection(const BlockingSection&) = delete;
  BlockingSection& operator=(const BlockingSection&) = delete;
  // Whether calls on this thread must no longer wait: the process is exiting
  // (InterruptBlocking), or this thread's environment is (StopBlockingHere).
  static bool Interrupted();
};

// A synchronous mirror's blocking system call. `syscall(mayWait)` returns -1
// and sets errno on failure; with mayWait false it must not wait (IPC_NOWAIT)
// and then fails with `wouldWait` where it would have waited. A call that
// `waits` (the caller did not ask for IPC_NOWAIT) is made again after EINTR,
// as C callers do, since JavaScript cannot run a handler before it returns
// anyway. Once Interrupted(), a call that would wait fails with EINTR instead,
// now or later; calls that do not wait (an unlock in an exit handler) still
// work. A template, not std::function, which would allocate on every call.
template <typename Syscall>
long RetryBlocking(bool waits, int wouldWait, Syscall syscall) {
  BlockingSection section;
  for (;;) {
    if (BlockingSection::Interrupted()) {
      long result = syscall(false);
      if (result == -1 && waits && errno == wouldWait) errno = EINTR;
      return result;
    }
    long result = syscall(true);
    if (result != -1 || errno != EINTR) return result;
  }
}

// interruptBlocking(): the main thread's process is exiting. Node then joins
// worker threads, and one blocked in a synchronous mirror call would hang it:
// every such call that waits, now or later, on any thread, fails with EINTR.
void InterruptBlocking(const Napi::CallbackInfo& info);

// This thread's environment is ending: its calls that would wait fail with
// EINTR from now on.
void StopBlockingHere();

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_WAITER_BLOCKING_H_
