#include "waiter.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "env_data.h"
#include "errors.h"

namespace kernel_ipc {

struct WaiterPool::Pending {
  double id;
  bool ref;
  std::unique_ptr<BlockingCall> call;
  // Set on the JS thread (under mutex_), read by the waiter without it.
  std::atomic<bool> cancelled{false};
  bool running = false;  // under mutex_, like thread
  pthread_t thread;
  Status status = kDone;
  int errnum = 0;
};

namespace {

// A waiter needs little stack: it makes one system call at a time.
constexpr size_t kStackSize = 256 * 1024;
// Idle waiters wait this long for another call before they exit.
constexpr auto kIdleTimeout = std::chrono::seconds(10);
// A wake signal that lands just before the waiter enters its system call
// interrupts nothing, so cancelled calls are signalled again, backing off.
constexpr auto kFirstResend = std::chrono::milliseconds(1);
constexpr auto kLastResend = std::chrono::milliseconds(100);
// A call polls this long, yielding the CPU between tries, before it sleeps in
// the kernel: an answer that comes quickly then costs one wake-up, not two
// (the waiter's and the event loop's). Linux's socket busy-polling does alike.
constexpr auto kPollFor = std::chrono::microseconds(50);

void OnWake(int) {}

void InstallWakeHandler() {
  static std::once_flag installed;
  std::call_once(installed, [] {
    struct sigaction action = {};
    action.sa_handler = OnWake;
    sigfillset(&action.sa_mask);
    // No SA_RESTART: the blocked system call must return EINTR.
    action.sa_flags = 0;
    sigaction(WakeSignal(), &action, nullptr);
  });
}

// Threads that have made a synchronous mirror's blocking call, for
// InterruptBlocking: each is listed from its first such call until it ends,
// so that a call costs two atomic stores rather than a lock. The list is
// never destroyed: workers may still be in a call while static destructors run.
std::mutex blockingMutex;
std::vector<struct BlockingThread*>& BlockingThreads() {
  static auto* threads = new std::vector<BlockingThread*>();
  return *threads;
}
std::atomic<bool> interrupting{false};
constexpr auto kInterruptFor = std::chrono::milliseconds(100);

struct BlockingThread {
  pthread_t thread = pthread_self();
  std::atomic<bool> inCall{false};

  BlockingThread() {
    std::lock_guard<std::mutex> lock(blockingMutex);
    BlockingThreads().push_back(this);
  }

  // Unlisted under the lock before the thread ends, so InterruptBlocking never
  // signals a thread that is gone.
  ~BlockingThread() {
    std::lock_guard<std::mutex> lock(blockingMutex);
    auto& threads = BlockingThreads();
    threads.erase(std::find(threads.begin(), threads.end(), this));
  }
};

thread_local BlockingThread blockingThread;

// Starts a thread with every signal blocked, so signals meant for the process
// are handled by Node's threads, never by ours.
int StartThread(pthread_t* thread, void* (*main)(void*), void* arg) {
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setstacksize(&attributes, kStackSize);
  int result = pthread_create(thread, &attributes, main, arg);
  pthread_attr_destroy(&attributes);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return result;
}

}  // namespace

int WakeSignal() { return SIGRTMAX - 2; }

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

double WaiterPool::Start(Napi::Env env, std::unique_ptr<BlockingCall> call, bool ref) {
  std::vector<pthread_t> exited;
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_) throw Napi::Error::New(env, "kernel-ipc: the process is exiting; no call can wait now");
  exited.swap(exitedThreads_);
  int error = 0;
  if (!resenderStarted_) {
    error = StartThread(&resender_, ResendLoop, this);
    resenderStarted_ = error == 0;
  }
  // Every queued call needs a thread of its own: it may block for ever.
  if (error == 0 && idle_ <= queue_.size()) {
    pthread_t thread;
    error = StartThread(&thread, WaitLoop, this);
    if (error == 0) ++threads_;
  }
  double id = nextId_++;
  if (error == 0) {
    auto pending = std::make_unique<Pending>();
    pending->id = id;
    pending->ref = ref;
    call->started_ = true;
    pending->call = std::move(call);
    queue_.push_back(pending.get());
    calls_.emplace(id, std::move(pending));
    queued_.notify_one();
  }
  lock.unlock();
  for (pthread_t thread : exited) pthread_join(thread, nullptr);
  if (error != 0) throw ErrnoError(env, error, "pthread_create");
  if (ref && refs_++ == 0) completions_.Ref(env);
  return id;
}

// Under mutex_: marks the call cancelled and, if a waiter is in its system
// call, interrupts it with the wake signal.
void WaiterPool::Interrupt(Pending& pending) {
  pending.cancelled = true;
  if (pending.running) pthread_kill(pending.thread, WakeSignal());
}

void WaiterPool::Cancel(double id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = calls_.find(id);
  if (found == calls_.end()) return;  // already completing
  Interrupt(*found->second);
  resend_.notify_one();
}

void* WaiterPool::WaitLoop(void* arg) {
  auto* pool = static_cast<WaiterPool*>(arg);
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, WakeSignal());
  pthread_sigmask(SIG_UNBLOCK, &wake, nullptr);

  std::unique_lock<std::mutex> lock(pool->mutex_);
  for (;;) {
    ++pool->idle_;
    bool hasWork = pool->queued_.wait_for(lock, kIdleTimeout, [pool] {
      return !pool->queue_.empty() || pool->stopping_;
    });
    --pool->idle_;
    if (!hasWork || pool->queue_.empty()) break;
    Pending* pending = pool->queue_.front();
    pool->queue_.pop_front();
    pending->running = true;
    pending->thread = pthread_self();
    lock.unlock();

    Run(*pending);

    lock.lock();
    pending->running = false;
    auto node = pool->calls_.extract(pending->id);
    lock.unlock();
    pool->Finish(std::move(node.mapped()));
    lock.lock();
  }
  --pool->threads_;
  pool->exitedThreads_.push_back(pthread_self());
  pool->exited_.notify_all();
  pool->resend_.notify_one();
  return nullptr;
}

void WaiterPool::Run(Pending& pending) {
  int errnum = BlockingCall::kWouldBlock;
  auto pollUntil = std::chrono::steady_clock::now() + kPollFor;
  while (!pending.cancelled) {
    errnum = pending.call->Run(false);
    if (errnum != BlockingCall::kWouldBlock || std::chrono::steady_clock::now() > pollUntil) break;
    sched_yield();
  }
  while (errnum == BlockingCall::kWouldBlock || errnum == EINTR) {
    if (pending.cancelled) {
      pending.status = kCancelled;
      return;
    }
    errnum = pending.call->Run(true);
  }
  pending.status = errnum == 0 ? kDone : kFailed;
  pending.errnum = errnum;
}

// Hands a completed call to JavaScript, or, once the pool has stopped, gives
// back what it took. Until Deliver takes it, it is listed in delivering_, so
// that Stop can give it back if JavaScript will never run again.
void WaiterPool::Finish(std::unique_ptr<Pending> pending) {
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) queued = delivering_.insert(pending.get()).second;
  }
  if (queued) {
    if (completions_.NonBlockingCall(pending.get()) == napi_ok) {
      pending.release();
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    delivering_.erase(pending.get());
  }
  if (pending->status == kDone) pending->call->Abandon();
}

void* WaiterPool::ResendLoop(void* arg) {
  auto* pool = static_cast<WaiterPool*>(arg);
  std::unique_lock<std::mutex> lock(pool->mutex_);
  auto delay = kFirstResend;
  for (;;) {
    if (pool->stopping_ && pool->threads_ == 0) return nullptr;
    auto interruptible = [pool] {
      return std::any_of(pool->calls_.begin(), pool->calls_.end(), [](const auto& entry) {
        return entry.second->cancelled && entry.second->running;
      });
    };
    if (!interruptible()) {
      delay = kFirstResend;
      pool->resend_.wait(lock);
      continue;
    }
    pool->resend_.wait_for(lock, delay);
    delay = std::min<std::chrono::milliseconds>(delay * 2, kLastResend);
    for (const auto& entry : pool->calls_) {
      if (entry.second->cancelled) Interrupt(*entry.second);
    }
  }
}

void WaiterPool::Stop() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_) return;
  stopping_ = true;
  for (const auto& entry : calls_) Interrupt(*entry.second);
  queued_.notify_all();
  resend_.notify_one();
  exited_.wait(lock, [this] { return threads_ == 0; });
  std::vector<pthread_t> exited;
  exited.swap(exitedThreads_);
  bool resender = resenderStarted_;
  resend_.notify_one();
  // No waiter is left to add to delivering_: what it holds will never be
  // delivered now, and Deliver, if it ever runs, finds it gone.
  std::unordered_set<Pending*> undelivered;
  undelivered.swap(delivering_);
  lock.unlock();
  if (resender) pthread_join(resender_, nullptr);
  for (pthread_t thread : exited) pthread_join(thread, nullptr);
  for (Pending* pending : undelivered) {
    if (pending->status == kDone) pending->call->Abandon();
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
void WaiterPool::Deliver(Napi::Env env, Napi::Function onComplete, WaiterPool* pool,
                         Pending* raw) {
  std::unique_ptr<Pending> pending(raw);
  {
    std::lock_guard<std::mutex> lock(pool->mutex_);
    // Not listed: Stop has already given back what it took.
    if (pool->delivering_.erase(raw) == 0) return;
  }
  if (static_cast<napi_env>(env) == nullptr) {  // the environment has ended
    if (pending->status == kDone) pending->call->Abandon();
    return;
  }
  try {
    if (pending->ref && --pool->refs_ == 0) pool->completions_.Unref(env);
    Napi::Value value = env.Undefined();
    if (pending->status == kDone) {
      value = pending->call->Result(env);
    } else if (pending->status == kFailed) {
      value = ErrnoError(env, pending->errnum, pending->call->Syscall(), pending->call->Path()).Value();
    }
    onComplete.Call({Napi::Number::New(env, pending->id), Napi::Number::New(env, pending->status), value});
  } catch (const Napi::Error& error) {
    // The result could not be built (out of memory) or handed over (the
    // environment is ending): a received message goes back on its queue, and
    // the call fails with the error if anyone is left to hear it.
    if (pending->status == kDone) pending->call->Abandon();
    try {
      onComplete.Call({Napi::Number::New(env, pending->id), Napi::Number::New(env, kFailed), error.Value()});
    } catch (const Napi::Error&) {
    }
  }
}

Napi::Value CompleteOrStart(Napi::Env env, std::unique_ptr<BlockingCall> call, bool ref) {
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
  return Napi::Number::New(env, WaitersOf(env).Start(env, std::move(call), ref));
}

BlockingSection::BlockingSection() { blockingThread.inCall = true; }

BlockingSection::~BlockingSection() { blockingThread.inCall = false; }

bool BlockingSection::Interrupted() { return interrupting; }

// A thread signalled just before it enters the kernel misses the signal:
// signal again until no thread is in a call, or for kInterruptFor (one stuck
// where no signal reaches it cannot be helped).
void InterruptBlocking(const Napi::CallbackInfo&) {
  InstallWakeHandler();
  interrupting = true;
  auto until = std::chrono::steady_clock::now() + kInterruptFor;
  for (;;) {
    bool any = false;
    {
      std::lock_guard<std::mutex> lock(blockingMutex);
      for (BlockingThread* blocking : BlockingThreads()) {
        if (!blocking->inCall) continue;
        pthread_kill(blocking->thread, WakeSignal());
        any = true;
      }
    }
    if (!any || std::chrono::steady_clock::now() > until) return;
    std::this_thread::sleep_for(kFirstResend);
  }
}

void WaiterInit(const Napi::CallbackInfo& info) {
  EnvData& data = DataOf(info.Env());
  if (data.waiters) throw Napi::Error::New(info.Env(), "waiterInit: already initialised");
  data.waiters = std::make_unique<WaiterPool>(info.Env(), info[0].As<Napi::Function>());
}

void WaiterStop(const Napi::CallbackInfo& info) {
  WaitersOf(info.Env()).Stop();
}

void WaiterCancel(const Napi::CallbackInfo& info) {
  WaitersOf(info.Env()).Cancel(info[0].As<Napi::Number>().DoubleValue());
}

WaiterPool& WaitersOf(Napi::Env env) {
  EnvData& data = DataOf(env);
  if (!data.waiters) throw Napi::Error::New(env, "waiterInit was not called");
  return *data.waiters;
}

}  // namespace kernel_ipc
