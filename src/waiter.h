#ifndef KERNEL_IPC_WAITER_H_
#define KERNEL_IPC_WAITER_H_

#include <errno.h>
#include <napi.h>
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace kernel_ipc {

// A blocking system call made for a promise. Its inputs are copied in on the
// JS thread; Run happens on a waiter thread, Result back on the JS thread.
class BlockingCall {
 public:
  virtual ~BlockingCall() = default;
  virtual const char* Syscall() const = 0;
  // The file the call is about, for its error (as Node's fs errors name it).
  virtual const char* Path() const { return nullptr; }
  // Makes the call once; returns 0 or its errno. Blocking, EINTR means it was
  // interrupted; not blocking, kWouldBlock means it would have waited.
  virtual int Run(bool block) = 0;
  static constexpr int kWouldBlock = -1;
  // After Run returned 0: what the promise resolves with.
  virtual Napi::Value Result(Napi::Env env) = 0;
  // After Run returned 0, when the environment ended before Result could be
  // delivered: give back what can be given back, such as a received message.
  virtual void Abandon() {}

 protected:
  // Whether a waiter thread has the call: the JS thread found that it must
  // wait, so the object it names existed then.
  bool started() const { return started_; }

 private:
  friend class WaiterPool;
  bool started_ = false;
};

// The threads one environment's blocking calls wait on: created on demand,
// one per call in progress, never libuv's threadpool. They block every signal
// but a private wake signal, which Cancel sends to interrupt a call. Results
// reach JavaScript through a thread-safe function that keeps the event loop
// alive while a referenced call is pending.
class WaiterPool {
 public:
  // onComplete(id, status, value) settles call `id`; status is one of:
  enum Status { kDone = 0, kCancelled = 1, kFailed = 2 };

  WaiterPool(Napi::Env env, Napi::Function onComplete);
  ~WaiterPool();

  // JS thread: hands `call` to a waiter thread and returns its id.
  double Start(Napi::Env env, std::unique_ptr<BlockingCall> call, bool ref);
  // JS thread: interrupts call `id` unless it has completed. It completes
  // cancelled if the system call had not succeeded, else as done.
  void Cancel(double id);
  // JS thread, when JavaScript will not run again (the environment or the
  // process is ending): interrupts every call, waits for every thread, and
  // gives back what calls took but JavaScript never received. Later calls to
  // Stop do nothing; Start then throws.
  void Stop();

 private:
  struct Pending;
  static void Deliver(Napi::Env env, Napi::Function onComplete,
                      WaiterPool* pool, Pending* pending);
  using Completions =
      Napi::TypedThreadSafeFunction<WaiterPool, Pending, Deliver>;

  static void Interrupt(Pending& pending);
  static void* WaitLoop(void* pool);
  static void Run(Pending& pending);
  static void* ResendLoop(void* pool);
  static void Shutdown(void* pool);
  void Finish(std::unique_ptr<Pending> pending);

  Completions completions_;
  size_t refs_ = 0;  // referenced calls pending; JS thread only
  double nextId_ = 1;

  std::mutex mutex_;
  std::condition_variable queued_;   // a call was queued, or stopping_
  std::condition_variable resend_;   // a call was cancelled, or stopping_
  std::condition_variable exited_;   // a waiter thread exited
  // Every call not yet handed to JavaScript, by id: queued or running.
  std::unordered_map<double, std::unique_ptr<Pending>> calls_;
  std::deque<Pending*> queue_;       // of calls_, not yet running
  // Completed calls handed to the thread-safe function, not yet to Deliver.
  std::unordered_set<Pending*> delivering_;
  std::vector<pthread_t> exitedThreads_;  // to join
  size_t threads_ = 0;
  size_t idle_ = 0;
  bool resenderStarted_ = false;
  pthread_t resender_;
  bool stopping_ = false;
};

// The signal that interrupts a waiter's system call: never blocked by the
// threads that wait, never to be blocked by sigprocmask.
int WakeSignal();

// JS thread: makes `call` once without waiting. If it completed, returns its
// Result (giving back what it took if that cannot be made); if it would have
// waited, hands it to a waiter thread and returns the call's id; else throws
// its error.
Napi::Value CompleteOrStart(Napi::Env env, std::unique_ptr<BlockingCall> call, bool ref);

// Marks the current thread as in a synchronous mirror's blocking call while
// it lives, so that InterruptBlocking can reach it.
class BlockingSection {
 public:
  BlockingSection();
  ~BlockingSection();
  BlockingSection(const BlockingSection&) = delete;
  BlockingSection& operator=(const BlockingSection&) = delete;
  // Whether the process is exiting: a call interrupted now must not be made again.
  static bool Interrupted();
};

// A synchronous mirror's blocking system call (`syscall` returns -1 and sets
// errno on failure), made again after EINTR as C callers do, since JavaScript
// cannot run a handler before it returns anyway; but once the process exits,
// an interrupted call fails with EINTR instead. Calls that do not wait (an
// unlock in an exit handler) still work then. Returns what `syscall` last
// returned. A template, not std::function, which would allocate on every call.
template <typename Syscall>
long RetryBlocking(Syscall syscall) {
  BlockingSection section;
  long result;
  do {
    result = syscall();
  } while (result == -1 && errno == EINTR && !BlockingSection::Interrupted());
  return result;
}

// interruptBlocking(): the main thread's process is exiting. Node then joins
// worker threads, and one blocked in a synchronous mirror call would hang it:
// every such call, now or later, fails with EINTR.
void InterruptBlocking(const Napi::CallbackInfo& info);

// waiterInit(onComplete): gives this environment its waiter threads.
void WaiterInit(const Napi::CallbackInfo& info);
// waiterStop(): see WaiterPool::Stop; for process.on('exit'), after which
// Node ends the main thread's process without its cleanup hooks.
void WaiterStop(const Napi::CallbackInfo& info);
// waiterCancel(id): see WaiterPool::Cancel.
void WaiterCancel(const Napi::CallbackInfo& info);
// The environment's pool; throws if waiterInit was not called.
WaiterPool& WaitersOf(Napi::Env env);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_WAITER_H_
