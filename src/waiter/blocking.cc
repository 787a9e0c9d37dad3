#include "waiter/blocking.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace kernel_ipc {
namespace {

void OnWake(int) {}

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
thread_local bool stoppedHere = false;
// A thread signalled just before it enters the kernel misses the signal: it
// is signalled again every kResendEvery, for up to kInterruptFor.
constexpr auto kResendEvery = std::chrono::milliseconds(1);
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

}  // namespace

int WakeSignal() { return SIGRTMAX - 2; }

int StartQuietThread(pthread_t* thread, void* (*main)(void*), void* arg, size_t stackSize) {
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  if (stackSize != 0) pthread_attr_setstacksize(&attributes, stackSize);
  int result = pthread_create(thread, &attributes, main, arg);
  pthread_attr_destroy(&attributes);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return result;
}

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

BlockingSection::BlockingSection() { blockingThread.inCall = true; }

BlockingSection::~BlockingSection() { blockingThread.inCall = false; }

bool BlockingSection::Interrupted() { return interrupting || stoppedHere; }

void StopBlockingHere() { stoppedHere = true; }

// Signals every thread in a call until none is, or for kInterruptFor (one
// stuck where no signal reaches it cannot be helped).
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
    std::this_thread::sleep_for(kResendEvery);
  }
}

}  // namespace kernel_ipc
