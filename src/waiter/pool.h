#ifndef KERNEL_IPC_WAITER_POOL_H_
#define KERNEL_IPC_WAITER_POOL_H_

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

namespace kernel_ipc {

// A blocking system call made for a promise. Its inputs are copied in on the
// JS thread; Run happens on a waiter thread, Result back on the JS thread.
class BlockingCall {
 public:
  virtual ~BlockingCall() = default;
  virtual const char* Syscall() const = 0;
  // The file the call is about, for its error (as Node's fs errors name it).
  virtual const char* Path() const { return nullptr; }
  // What the call waits for, such as "a message of type 3 on queue 7". Calls
  // that wait for the same thing wait in one line, served in call order by one
  // thread; "" (the default) is a line of its own.
  virtual std::string Line() const { return ""; }
  // Makes the call once; returns 0 or its errno. Blocking, EINTR means it was
  // interrupted; not blocking, kWouldBlock means it would have waited.
  virtual int Run(bool block) = 0;
  static constexpr int kWouldBlock = -1;
  // After Run returned 0: what the promise resolves with.
  virtual Napi::Value Result(Napi::Env env) = 0;
  // After Run returned 0, when the result could not be handed to JavaScript:
  // give back what can be given back, such as a received message.
  virtual void Abandon() {}

 protected:
  // Whether a waiter thread has the call: the JS thread found that it must
  // wait, so the object it names existed then.
  bool started() const { return started_; }

 private:
  friend class WaiterPool;
  bool started_ = false;
};

// One environment's blocking calls, waiting on threads of the addon's own,
// never libuv's threadpool. Calls wait in lines (see BlockingCall::Line); a
// thread serves one line at a time, so calls waiting for the same thing need
// one thread between them. The threads serve every environment's lines: they
// start on demand, at most kMaxThreads in the process, and end after a while
// idle. They block every signal but a private wake signal, which Cancel sends
// to interrupt a call. Results reach JavaScript through a thread-safe function
// that keeps the event loop alive while a referenced call is pending.
class WaiterPool {
 public:
  // onComplete(id, status, value) settles call `id`; status is one of:
  enum Status { kDone = 0, kCancelled = 1, kFailed = 2 };
  // Threads waiting for calls, in all environments together.
  static constexpr size_t kMaxThreads = 128;

  WaiterPool(Napi::Env env, Napi::Function onComplete);
  ~WaiterPool();

  // JS thread: whether calls wait in the line of `call` now: it must wait
  // behind them.
  bool HasLine(const BlockingCall& call);
  // JS thread: queues `call` in its line and returns its id; throws EAGAIN if
  // the line needs a thread and none can be had.
  double Start(Napi::Env env, std::unique_ptr<BlockingCall> call, bool ref);
  // JS thread: cancels call `id`. Returns true if it was still queued: it is
  // gone, having done nothing. Otherwise, if it is in its system call, that is
  // interrupted, and it completes through onComplete (cancelled if the call
  // had not succeeded, else done), keeping the event loop alive until then.
  bool Cancel(Napi::Env env, double id);
  // JS thread, when JavaScript will not run again (the environment or the
  // process is ending): interrupts every call, waits until none runs, and
  // gives back what calls took but JavaScript never received; with `env`,
  // lets the event loop end. Later calls to Stop do nothing; Start then throws.
  void Stop(napi_env env = nullptr);

  struct Pending;
  struct Line;

 private:
  friend class Waiters;
  static void Deliver(Napi::Env env, Napi::Function onComplete, WaiterPool* pool, void* id);
  using Completions = Napi::TypedThreadSafeFunction<WaiterPool, void, Deliver>;

  static void Shutdown(void* pool);
  void Finish(Pending& pending);

  Completions completions_;
  size_t refs_ = 0;  // referenced calls pending; JS thread only
  uint64_t nextId_ = 1;
  // Under the waiters' mutex (see waiter/pool.cc): every call not yet handed
  // to JavaScript, by id (queued, running, or handed to the thread-safe
  // function), and the lines they wait in.
  std::unordered_map<uint64_t, std::unique_ptr<Pending>> calls_;
  std::unordered_map<std::string, std::unique_ptr<Line>> lines_;
  // lines_.size(), also for reading without the mutex (HasLine).
  std::atomic<size_t> lineCount_{0};
  bool stopping_ = false;
};

// JS thread: makes `call` once without waiting, unless calls already wait in
// its line. If it completed, returns its Result (giving back what it took if
// that cannot be made); if it would have waited, queues it and returns the
// call's id; else throws its error.
Napi::Value CompleteOrStart(Napi::Env env, std::unique_ptr<BlockingCall> call, bool ref);

// waiterInit(onComplete): gives this environment its waiter threads.
void WaiterInit(const Napi::CallbackInfo& info);
// waiterStop(): see WaiterPool::Stop; for process.on('exit'), after which
// Node ends the main thread's process without its cleanup hooks. Synchronous
// calls on this thread that would wait fail with EINTR from then on.
void WaiterStop(const Napi::CallbackInfo& info);
// waiterCancel(id): see WaiterPool::Cancel.
Napi::Value WaiterCancel(const Napi::CallbackInfo& info);
// The environment's pool; throws if waiterInit was not called.
WaiterPool& WaitersOf(Napi::Env env);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_WAITER_POOL_H_
