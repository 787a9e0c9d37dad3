#include "waiter/pool.h"

#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <string>
#include <vector>

#include "env_data.h"
#include "errors.h"
#include "waiter/blocking.h"

namespace kernel_ipc {

struct WaiterPool::Pending {
  uint64_t id;
  bool ref;  // JS thread only
  std::unique_ptr<BlockingCall> call;
  // Under the waiters' mutex: its line, until JavaScript has its outcome, and
  // its place among the line's calls while it waits there (queued).
  Line* line = nullptr;
  std::list<Pending*>::iterator place;
  bool queued = false;
  // Set under the mutex, read by the waiter without it.
  std::atomic<bool> cancelled{false};
  bool running = false;  // under the mutex, like thread
  pthread_t thread;
  Status status = kDone;
  int errnum = 0;
};

// A line lasts until JavaScript has the outcome of its last call, so that a
// call made meanwhile still waits its turn: outcomes reach JavaScript in call
// order. A line with calls has a thread, or waits for one in unserved_.
struct WaiterPool::Line {
  WaiterPool* pool;
  std::string key;
  // In call order; the first runs once a thread serves the line.
  std::list<Pending*> calls;
  bool served = false;   // a thread serves it
  bool waiting = false;  // in Waiters::unserved_, for a thread
  size_t undelivered = 0;  // calls run, their outcome not yet with JavaScript
};

namespace {

// A waiter needs little stack: it makes one system call at a time.
constexpr size_t kStackSize = 256 * 1024;
// Idle waiters wait this long for another line before they exit.
constexpr auto kIdleTimeout = std::chrono::seconds(3);
// A wake signal that lands just before the waiter enters its system call
// interrupts nothing, so cancelled calls are signalled again, backing off.
constexpr auto kFirstResend = std::chrono::milliseconds(1);
constexpr auto kLastResend = std::chrono::milliseconds(100);
// A call polls this long, yielding the CPU between tries, before it sleeps in
// the kernel: an answer that comes quickly then costs one wake-up, not two
// (the waiter's and the event loop's). Linux's socket busy-polling does alike.
constexpr auto kPollFor = std::chrono::microseconds(50);
constexpr int kTooManyThreads = -1;
// What top -H and /proc/<pid>/task/*/comm call them (at most 15 characters).
constexpr const char* kWaiterName = "kipc-waiter";
constexpr const char* kHousekeeperName = "kipc-housekeep";

// libuv starts its threadpool's threads at its first use and aborts the
// process if it cannot: they are started before waiter threads could take
// the last ones the system allows (pids.max, RLIMIT_NPROC).
void StartThreadpool(napi_env env) {
  static std::once_flag started;
  std::call_once(started, [env] {
    napi_value name;
    auto* work = new napi_async_work();
    if (napi_create_string_utf8(env, "kernel-ipc", NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_create_async_work(
            env, nullptr, name, [](napi_env, void*) {},
            [](napi_env env, napi_status, void* data) {
              auto* work = static_cast<napi_async_work*>(data);
              napi_delete_async_work(env, *work);
              delete work;
            },
            work, work) != napi_ok) {
      delete work;
      return;
    }
    if (napi_queue_async_work(env, *work) != napi_ok) {
      napi_delete_async_work(env, *work);
      delete work;
    }
  });
}

void* IdToData(uint64_t id) { return reinterpret_cast<void*>(static_cast<uintptr_t>(id)); }
uint64_t DataToId(void* data) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(data)); }

}  // namespace

// The threads that serve every environment's lines, and the one lock over
// them and over every pool's calls and lines. Never destroyed: threads may
// still use it while static destructors run.
class Waiters {
 public:
  using Pending = WaiterPool::Pending;
  using Line = WaiterPool::Line;

  static Waiters& Get() {
    static auto* waiters = new Waiters();
    return *waiters;
  }

  std::mutex mutex;
  std::condition_variable unservedChanged;  // a line needs a thread
  std::condition_variable housework;        // a running call was cancelled, or a thread exited
  std::condition_variable lineEnded;        // a line was erased

  // Under mutex: 0, kTooManyThreads, or pthread_create's errno.
  int AddThread() {
    if (threads_ >= WaiterPool::kMaxThreads) return kTooManyThreads;
    if (!housekeeping_) {
      pthread_t housekeeper;
      if (int error = StartQuietThread(&housekeeper, Housekeep, nullptr, kStackSize)) return error;
      pthread_detach(housekeeper);
      housekeeping_ = true;
    }
    pthread_t thread;
    if (int error = StartQuietThread(&thread, Serve, nullptr, kStackSize)) return error;
    ++threads_;
    return 0;
  }

  // Under mutex: whether a line must have a thread added for it.
  bool NeedsThread() const { return idle_ <= unserved_.size(); }

  // Under mutex: a line with calls and no thread, to wait for one.
  void Queue(Line* line) {
    line->waiting = true;
    unserved_.push_back(line);
    unservedChanged.notify_one();
  }

  // Under mutex: takes a call that is not running out of its line.
  void Unqueue(Pending& pending) {
    Line* line = pending.line;
    line->calls.erase(pending.place);
    pending.queued = false;
    pending.line = nullptr;
    if (!line->calls.empty() || line->served) return;
    if (line->waiting) {
      unserved_.erase(std::find(unserved_.begin(), unserved_.end(), line));
      line->waiting = false;
    }
    EndIfIdle(line);
  }

  // Under mutex: JavaScript has the outcome of a call of the line's.
  void Delivered(Pending& pending) {
    Line* line = pending.line;
    if (line == nullptr) return;
    pending.line = nullptr;
    --line->undelivered;
    EndIfIdle(line);
  }

  // Under mutex: marks the call cancelled and, if a waiter is in its system
  // call, interrupts it with the wake signal (again later, see Housekeep).
  void Interrupt(Pending& pending) {
    pending.cancelled = true;
    if (!pending.running) return;
    pthread_kill(pending.thread, WakeSignal());
    housework.notify_one();
  }

  // Under mutex: erases the line once nothing is in it, or due from it.
  void EndIfIdle(Line* line) {
    if (!line->calls.empty() || line->served || line->waiting || line->undelivered > 0) return;
    WaiterPool* pool = line->pool;
    pool->lines_.erase(line->key);
    pool->lineCount_ = pool->lines_.size();
    lineEnded.notify_all();
  }

 private:
  // A waiter thread: serves lines, each until it is empty, until none has
  // come for kIdleTimeout.
  static void* Serve(void*) {
    Waiters& waiters = Get();
    pthread_setname_np(pthread_self(), kWaiterName);
    sigset_t wake;
    sigemptyset(&wake);
    sigaddset(&wake, WakeSignal());
    pthread_sigmask(SIG_UNBLOCK, &wake, nullptr);

    std::unique_lock<std::mutex> lock(waiters.mutex);
    for (;;) {
      ++waiters.idle_;
      waiters.unservedChanged.wait_for(lock, kIdleTimeout, [&] { return !waiters.unserved_.empty(); });
      --waiters.idle_;
      if (waiters.unserved_.empty()) break;
      Line* line = waiters.unserved_.front();
      waiters.unserved_.pop_front();
      line->waiting = false;
      line->served = true;
      while (!line->calls.empty()) {
        Pending* pending = line->calls.front();
        pending->running = true;
        pending->thread = pthread_self();
        waiters.running_.push_back(pending);
        lock.unlock();
        Run(*pending);
        lock.lock();
        pending->running = false;
        waiters.running_.erase(std::find(waiters.running_.begin(), waiters.running_.end(), pending));
        line->calls.pop_front();
        pending->queued = false;
        ++line->undelivered;
        line->pool->Finish(*pending);
      }
      line->served = false;
      // Stop waits until no thread serves its lines.
      waiters.lineEnded.notify_all();
      waiters.EndIfIdle(line);
    }
    --waiters.threads_;
    waiters.exited_.push_back(pthread_self());
    waiters.housework.notify_one();
    return nullptr;
  }

  static void Run(Pending& pending) {
    int errnum = BlockingCall::kWouldBlock;
    auto pollUntil = std::chrono::steady_clock::now() + kPollFor;
    while (!pending.cancelled) {
      errnum = pending.call->Run(false);
      if (errnum != BlockingCall::kWouldBlock || std::chrono::steady_clock::now() > pollUntil) break;
      sched_yield();
    }
    while (errnum == BlockingCall::kWouldBlock || errnum == EINTR) {
      if (pending.cancelled) {
        pending.status = WaiterPool::kCancelled;
        return;
      }
      errnum = pending.call->Run(true);
    }
    pending.status = errnum == 0 ? WaiterPool::kDone : WaiterPool::kFailed;
    pending.errnum = errnum;
  }

  // Signals cancelled calls again until they leave their system call, and
  // joins the threads that exited; ends with the last of them.
  static void* Housekeep(void*) {
    Waiters& waiters = Get();
    pthread_setname_np(pthread_self(), kHousekeeperName);
    std::unique_lock<std::mutex> lock(waiters.mutex);
    auto delay = kFirstResend;
    auto cancelled = [](const Pending* pending) { return pending->cancelled.load(); };
    for (;;) {
      if (!waiters.exited_.empty()) {
        std::vector<pthread_t> exited;
        exited.swap(waiters.exited_);
        lock.unlock();
        for (pthread_t thread : exited) pthread_join(thread, nullptr);
        lock.lock();
        continue;
      }
      if (waiters.threads_ == 0) {
        waiters.housekeeping_ = false;
        return nullptr;
      }
      if (std::none_of(waiters.running_.begin(), waiters.running_.end(), cancelled)) {
        delay = kFirstResend;
        waiters.housework.wait(lock);
        continue;
      }
      waiters.housework.wait_for(lock, delay);
      delay = std::min<std::chrono::milliseconds>(delay * 2, kLastResend);
      for (Pending* pending : waiters.running_) {
        if (cancelled(pending)) pthread_kill(pending->thread, WakeSignal());
      }
    }
  }

  std::deque<Line*> unserved_;      // lines with calls and no thread yet
  std::vector<Pending*> running_;   // calls in their system call, one per thread
  std::vector<pthread_t> exited_;   // to join
  size_t threads_ = 0;
  size_t idle_ = 0;
  bool housekeeping_ = false;
};

WaiterPool::WaiterPool(Napi::Env env, Napi::Function onComplete) {
  InstallWakeHandler();
  completions_ = Completions::New(env, onComplete, "kernel-ipc waiter", 0, 1, this);
  completions_.Unref(env);
  // Registered after the thread-safe function, so it runs before Node's own
  // hook closes that function: the waiters are gone by then.
  napi_add_env_cleanup_hook(env, Shutdown, this);
}

// Runs after Shutdown, when the environment deletes its data.
WaiterPool::~WaiterPool() = default;

bool WaiterPool::HasLine(const BlockingCall& call) {
  // Nothing waits (the common case): no key to build, no lock to take.
  if (lineCount_ == 0) return false;
  std::string key = call.Line();
  std::lock_guard<std::mutex> lock(Waiters::Get().mutex);
  return lines_.count(key) == 1;
}

double WaiterPool::Start(Napi::Env env, std::unique_ptr<BlockingCall> call, bool ref) {
  Waiters& waiters = Waiters::Get();
  std::unique_lock<std::mutex> lock(waiters.mutex);
  if (stopping_) throw Napi::Error::New(env, "kernel-ipc: the process is exiting; no call can wait now");
  uint64_t id = nextId_++;
  std::string key = call->Line();
  if (key.empty()) key = "#" + std::to_string(id);
  auto found = lines_.find(key);
  Line* line = found == lines_.end() ? nullptr : found->second.get();
  // A new line, or one whose results are still due, needs a thread.
  if (line == nullptr || (!line->served && !line->waiting)) {
    if (waiters.NeedsThread()) {
      StartThreadpool(env);
      int error = waiters.AddThread();
      if (error != 0) {
        lock.unlock();
        if (error != kTooManyThreads) throw ErrnoError(env, error, "pthread_create");
        throw DescribedErrnoError(env, EAGAIN, call->Syscall(),
                                  std::to_string(kMaxThreads) +
                                      " calls already wait on threads of kernel-ipc, the most there can be at once"
                                      " (calls that wait for the same thing share one)");
      }
    }
    if (line == nullptr) {
      auto made = std::make_unique<Line>();
      made->pool = this;
      made->key = key;
      line = made.get();
      lines_.emplace(key, std::move(made));
      lineCount_ = lines_.size();
    }
    waiters.Queue(line);
  }
  auto pending = std::make_unique<Pending>();
  pending->id = id;
  pending->ref = ref;
  call->started_ = true;
  pending->call = std::move(call);
  pending->line = line;
  pending->place = line->calls.insert(line->calls.end(), pending.get());
  pending->queued = true;
  calls_.emplace(id, std::move(pending));
  if (ref && refs_++ == 0) completions_.Ref(env);
  return static_cast<double>(id);
}

bool WaiterPool::Cancel(Napi::Env env, double id) {
  Waiters& waiters = Waiters::Get();
  std::lock_guard<std::mutex> lock(waiters.mutex);
  auto found = calls_.find(static_cast<uint64_t>(id));
  if (found == calls_.end()) return false;  // delivered already
  Pending& pending = *found->second;
  if (pending.queued && !pending.running) {
    waiters.Unqueue(pending);
    if (pending.ref && --refs_ == 0) completions_.Unref(env);
    calls_.erase(found);
    return true;
  }
  waiters.Interrupt(pending);
  // Its outcome must still reach JavaScript, which waits for it: until then
  // the call keeps the event loop alive, whatever `ref` said.
  if (!pending.ref) {
    pending.ref = true;
    if (refs_++ == 0) completions_.Ref(env);
  }
  return false;
}

// Under the waiters' mutex: hands a completed call to JavaScript, or, once the
// pool has stopped, gives back what it took. Until Deliver takes it, it stays
// in calls_, so that Stop can give it back if JavaScript will never run again.
void WaiterPool::Finish(Pending& pending) {
  if (!stopping_ && completions_.NonBlockingCall(IdToData(pending.id)) == napi_ok) return;
  if (pending.status == kDone) pending.call->Abandon();
  Waiters::Get().Delivered(pending);
  calls_.erase(pending.id);
}

void WaiterPool::Stop(napi_env env) {
  Waiters& waiters = Waiters::Get();
  std::unique_lock<std::mutex> lock(waiters.mutex);
  if (stopping_) return;
  stopping_ = true;
  // Calls still queued never ran: they go, having taken nothing.
  for (auto it = calls_.begin(); it != calls_.end();) {
    Pending& pending = *it->second;
    if (pending.queued && !pending.running) {
      waiters.Unqueue(pending);
      it = calls_.erase(it);
      continue;
    }
    waiters.Interrupt(pending);
    ++it;
  }
  // Until no thread serves a line of this pool.
  waiters.lineEnded.wait(lock, [this] {
    return std::none_of(lines_.begin(), lines_.end(), [](const auto& line) { return line.second->served; });
  });
  // What is left was handed to the thread-safe function and never delivered:
  // JavaScript will not run again to take it.
  for (const auto& entry : calls_) {
    if (entry.second->status == kDone) entry.second->call->Abandon();
  }
  calls_.clear();
  lines_.clear();
  lineCount_ = 0;
  // Nothing pending keeps the event loop alive any more ('exit' may have been
  // emitted by hand, and the process lives on).
  if (env != nullptr && refs_ > 0) {
    refs_ = 0;
    completions_.Unref(env);
  }
}

// The environment is ending: stop, then let go of the thread-safe function.
void WaiterPool::Shutdown(void* arg) {
  auto* pool = static_cast<WaiterPool*>(arg);
  pool->Stop();
  pool->completions_.Release();
}

// Runs on the JS thread and must not throw: an exception here would reach
// Node's C code. JavaScript cannot run while a worker is being terminated.
void WaiterPool::Deliver(Napi::Env env, Napi::Function onComplete, WaiterPool* pool, void* data) {
  std::unique_ptr<Pending> pending;
  {
    std::lock_guard<std::mutex> lock(Waiters::Get().mutex);
    auto found = pool->calls_.find(DataToId(data));
    // Gone: Stop has already given back what it took.
    if (found == pool->calls_.end()) return;
    pending = std::move(found->second);
    pool->calls_.erase(found);
    Waiters::Get().Delivered(*pending);
  }
  if (static_cast<napi_env>(env) == nullptr) {  // the environment has ended
    if (pending->status == kDone) pending->call->Abandon();
    return;
  }
  if (pending->ref && --pool->refs_ == 0) pool->completions_.Unref(env);
  Status status = pending->status;
  Napi::Value value = env.Undefined();
  try {
    if (status == kDone) {
      value = pending->call->Result(env);
    } else if (status == kFailed) {
      value = ErrnoError(env, pending->errnum, pending->call->Syscall(), pending->call->Path()).Value();
    }
  } catch (const Napi::Error& error) {
    // The result could not be built (out of memory): a received message goes
    // back on its queue, and the call fails with the error.
    if (status == kDone) pending->call->Abandon();
    status = kFailed;
    value = error.Value();
  }
  // onComplete returns true once JavaScript has the result. It cannot run
  // while a worker is being terminated: nobody took the result then.
  bool taken = false;
  try {
    Napi::Value took = onComplete.Call(
        {Napi::Number::New(env, static_cast<double>(pending->id)), Napi::Number::New(env, status), value});
    taken = took.IsBoolean() && took.As<Napi::Boolean>().Value();
  } catch (const Napi::Error&) {
  }
  if (!taken && status == kDone) pending->call->Abandon();
}

Napi::Value CompleteOrStart(Napi::Env env, std::unique_ptr<BlockingCall> call, bool ref) {
  WaiterPool& pool = WaitersOf(env);
  // Behind calls already waiting for the same thing, it waits its turn.
  if (!pool.HasLine(*call)) {
    int errnum = call->Run(false);
    if (errnum == 0) {
      try {
        return call->Result(env);
      } catch (const Napi::Error&) {
        call->Abandon();
        throw;
      }
    }
    if (errnum != BlockingCall::kWouldBlock) throw ErrnoError(env, errnum, call->Syscall(), call->Path());
  }
  return Napi::Number::New(env, pool.Start(env, std::move(call), ref));
}

void WaiterInit(const Napi::CallbackInfo& info) {
  EnvData& data = DataOf(info.Env());
  if (data.waiters) throw Napi::Error::New(info.Env(), "waiterInit: already initialised");
  data.waiters = std::make_unique<WaiterPool>(info.Env(), info[0].As<Napi::Function>());
}

void WaiterStop(const Napi::CallbackInfo& info) {
  StopBlockingHere();
  WaitersOf(info.Env()).Stop(info.Env());
}

Napi::Value WaiterCancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Boolean::New(env, WaitersOf(env).Cancel(env, info[0].As<Napi::Number>().DoubleValue()));
}

WaiterPool& WaitersOf(Napi::Env env) {
  EnvData& data = DataOf(env);
  if (!data.waiters) throw Napi::Error::New(env, "waiterInit was not called");
  return *data.waiters;
}

}  // namespace kernel_ipc
