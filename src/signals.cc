// A signal mask for the whole process. POSIX masks are per thread, and Node
// runs many threads: a process-directed signal goes to any thread that does
// not block it. So sigprocmask changes the calling thread's mask and then, as
// glibc does for setuid, signals every other thread with a reserved real-time
// signal whose handler changes that thread's mask (the one sigreturn
// restores). Threads started later inherit the mask of the thread that
// starts them, which by then has it.
//
// A process may hold several copies of kernel-ipc (npm trees often do: two
// dependencies pinning different versions), each a shared object with state
// of its own, but a signal has one handler per process: were each copy to
// install its own, the last would answer every copy's broadcast with its own
// state. So one copy, the first loaded that exports kernel_ipc_signals_v1,
// holds the masks and the handler, and every copy makes its changes through
// it. Copies load one after another, so each finds the same first one,
// whichever initialises first. The waiters' wake signal needs no such care:
// its handler does nothing in every copy, so any copy's serves all.
#include "signals.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "errors.h"
#include "waiter.h"

namespace kernel_ipc {
namespace {

// Bit n - 1 stands for signal n: Linux has 64.
using SignalBits = uint64_t;
constexpr int kSignals = 64;

constexpr SignalBits Bit(int signo) { return SignalBits{1} << (signo - 1); }

int MaskSignal() { return SIGRTMAX - 3; }

// What every thread's mask must say: for each signal in `managed`, blocked
// exactly when it is in `blocked`; other signals as the thread has them.
// Applying it is idempotent, so a late handler applies the latest state.
static_assert(std::atomic<SignalBits>::is_always_lock_free, "the handler reads these");
std::atomic<SignalBits> managed{0};
std::atomic<SignalBits> blocked{0};
// Counts changes; a handler reports the one it applied.
std::atomic<uint64_t> generation{0};
// Handlers write an Ack here for the thread changing the masks to read.
int acks[2] = {-1, -1};
// One change at a time, from whichever JS thread makes it.
std::mutex changing;

struct Ack {
  pid_t tid;
  uint64_t generation;
};

pid_t ThreadId() { return static_cast<pid_t>(syscall(SYS_gettid)); }

void Apply(sigset_t* mask) {
  SignalBits which = managed.load();
  SignalBits block = blocked.load();
  for (int signo = 1; signo <= kSignals; ++signo) {
    if (!(which & Bit(signo))) continue;
    if (block & Bit(signo)) {
      sigaddset(mask, signo);
    } else {
      sigdelset(mask, signo);
    }
  }
}

// Async-signal-safe: atomics, bit operations and write(2).
void OnMaskSignal(int, siginfo_t*, void* context) {
  int savedErrno = errno;
  Ack ack{ThreadId(), generation.load()};
  Apply(&static_cast<ucontext_t*>(context)->uc_sigmask);
  ssize_t written = write(acks[1], &ack, sizeof ack);
  (void)written;  // a full pipe only makes the changer wait for its deadline
  errno = savedErrno;
}

// Under `changing`, before each change: makes OnMaskSignal the mask signal's
// handler unless another library's handler is (EBUSY), checked each time as
// a library may install one later. Returns 0 or an errno.
int Claim() {
  if (acks[0] == -1 && pipe2(acks, O_CLOEXEC | O_NONBLOCK) == -1) return errno;
  struct sigaction current;
  if (sigaction(MaskSignal(), nullptr, &current) == -1) return errno;
  if (current.sa_sigaction == OnMaskSignal) return 0;
  // Ignored may be inherited through exec; a handler is someone's here.
  if (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN) return EBUSY;
  struct sigaction action = {};
  action.sa_sigaction = OnMaskSignal;
  sigfillset(&action.sa_mask);
  // SA_RESTART: most interrupted system calls carry on; the few Linux never
  // restarts (poll, epoll_wait, nanosleep...) return EINTR, as for any
  // signal, and as they do when glibc's setuid signals every thread.
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  if (sigaction(MaskSignal(), &action, nullptr) == -1) return errno;
  return 0;
}

SignalBits ToBits(const sigset_t& set) {
  SignalBits bits = 0;
  for (int signo = 1; signo <= kSignals; ++signo) {
    if (sigismember(&set, signo) == 1) bits |= Bit(signo);
  }
  return bits;
}

sigset_t ToSet(SignalBits bits) {
  sigset_t set;
  sigemptyset(&set);
  for (int signo = 1; signo <= kSignals; ++signo) {
    if (bits & Bit(signo)) sigaddset(&set, signo);
  }
  return set;
}

SignalBits BitsOf(const Napi::Value& value) {
  auto array = value.As<Napi::Array>();
  SignalBits bits = 0;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    bits |= Bit(array.Get(i).As<Napi::Number>().Int32Value());
  }
  return bits;
}

Napi::Array ToArray(Napi::Env env, SignalBits bits) {
  Napi::Array result = Napi::Array::New(env);
  uint32_t length = 0;
  for (int signo = 1; signo <= kSignals; ++signo) {
    if (bits & Bit(signo)) result.Set(length++, signo);
  }
  return result;
}

// Every signal a caller may block: not SIGKILL or SIGSTOP (the kernel will
// not); not the signals of a thread's own faults (Linux kills a process that
// faults with one blocked, and V8 handles SIGSEGV to turn WebAssembly
// out-of-bounds accesses into exceptions); not SIGCHLD (libuv reaps children
// in its handler); not glibc's own below SIGRTMIN; not ours. SIG_SETMASK
// leaves them as each thread has them.
SignalBits Blockable() {
  constexpr SignalBits kRefused = Bit(SIGKILL) | Bit(SIGSTOP) | Bit(SIGSEGV) | Bit(SIGBUS) | Bit(SIGFPE) |
                                  Bit(SIGILL) | Bit(SIGTRAP) | Bit(SIGSYS) | Bit(SIGCHLD);
  SignalBits bits = 0;
  for (int signo = 1; signo <= kSignals; ++signo) {
    if (kRefused & Bit(signo)) continue;
    if (signo > 31 && signo < SIGRTMIN) continue;
    if (signo == WakeSignal() || signo == MaskSignal()) continue;
    bits |= Bit(signo);
  }
  return bits;
}

// The threads of the process; 0 or an errno.
int ListThreads(std::vector<pid_t>* tids) {
  tids->clear();
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return errno;
  while (struct dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') tids->push_back(static_cast<pid_t>(atoi(entry->d_name)));
  }
  closedir(dir);
  return 0;
}

struct ThreadSignals {
  SignalBits pending = 0;  // to this thread alone
  SignalBits blocked = 0;
};

// A hexadecimal field of a /proc status file, such as "SigBlk".
bool HexField(const char* status, const char* field, SignalBits* out) {
  const char* found = strstr(status, field);
  if (found == nullptr) return false;
  *out = strtoull(found + strlen(field), nullptr, 16);
  return true;
}

// From /proc: false if the thread has gone.
bool ReadThreadSignals(pid_t tid, ThreadSignals* out) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) return false;
  char status[4096];
  ssize_t size = read(fd, status, sizeof status - 1);
  close(fd);
  if (size <= 0) return false;
  status[size] = '\0';
  return HexField(status, "\nSigPnd:", &out->pending) && HexField(status, "\nSigBlk:", &out->blocked);
}

bool ThreadExists(pid_t tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d", tid);
  return access(path, F_OK) == 0;
}

// A thread stuck in an uninterruptible system call (a disk or NFS read)
// handles the signal only when that call returns; it applies the latest
// masks then, but sigprocmask does not wait for it longer than this.
constexpr auto kAckDeadline = std::chrono::seconds(1);
// A thread that blocks the mask signal may do so for an instant (glibc's
// pthread_create blocks every signal while it starts a thread, which then
// gets the creator's mask from before) or for good (the waiters, Node's
// inspector signal thread). Each is given this long to answer; one that does
// not is taken to block every signal for good, and not waited for again.
constexpr auto kBlockerGrace = std::chrono::milliseconds(5);
std::unordered_set<pid_t> optedOut;  // under `changing`

// Reads acks for `current` until none are `awaited`, and no `blockers` are
// either or their grace has passed, or the deadline passes.
void AwaitAcks(std::unordered_set<pid_t>& awaited, std::unordered_set<pid_t>& blockers, uint64_t current,
               std::chrono::steady_clock::time_point grace, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    if (awaited.empty() && (blockers.empty() || now >= grace)) return;
    Ack received[64];
    ssize_t bytes = read(acks[0], received, sizeof received);
    if (bytes > 0) {
      for (size_t i = 0; i < static_cast<size_t>(bytes) / sizeof(Ack); ++i) {
        if (received[i].generation != current) continue;
        awaited.erase(received[i].tid);
        blockers.erase(received[i].tid);
      }
      continue;
    }
    if (now >= deadline) return;
    struct pollfd readable = {acks[0], POLLIN, 0};
    if (poll(&readable, 1, 1) == 0) {
      // Threads that exited before handling the signal never answer.
      for (auto it = awaited.begin(); it != awaited.end();) {
        it = ThreadExists(*it) ? std::next(it) : awaited.erase(it);
      }
    }
  }
}

// Brings every other thread to the current masks, in rounds until a round
// finds no thread it had not seen and no blocker answered: a thread started
// during one round (with its creator's mask from before) is found by the
// next. Returns 0 or the errno of listing the threads.
int BroadcastMasks(uint64_t current) {
  auto started = std::chrono::steady_clock::now();
  auto deadline = started + kAckDeadline;
  pid_t process = getpid();
  std::unordered_set<pid_t> seen{ThreadId()};
  std::unordered_set<pid_t> blockers;
  SignalBits maskBit = Bit(MaskSignal());
  std::vector<pid_t> tids;
  for (bool first = true;; first = false) {
    if (int errnum = ListThreads(&tids)) return errnum;
    if (first) {  // forget threads that have gone
      std::unordered_set<pid_t> live(tids.begin(), tids.end());
      for (auto it = optedOut.begin(); it != optedOut.end();) it = live.count(*it) ? std::next(it) : optedOut.erase(it);
    }
    std::unordered_set<pid_t> awaited;
    bool found = false;
    for (pid_t tid : tids) {
      if (!seen.insert(tid).second) continue;
      found = true;
      // Unreadable (out of descriptors): signal it and wait for it anyway.
      ThreadSignals thread;
      bool known = ReadThreadSignals(tid, &thread);
      bool blocking = known && (thread.blocked & maskBit);
      // One queued at a time is enough: whenever it runs, it applies the
      // latest masks and reports the latest generation.
      if (!(known && (thread.pending & maskBit)) && syscall(SYS_tgkill, process, tid, MaskSignal()) == -1) continue;
      if (!blocking) {
        optedOut.erase(tid);
        awaited.insert(tid);
      } else if (!optedOut.count(tid)) {
        blockers.insert(tid);
      }
    }
    if (!found && blockers.empty()) return 0;
    size_t silent = blockers.size();
    AwaitAcks(awaited, blockers, current, started + kBlockerGrace, deadline);
    if (std::chrono::steady_clock::now() >= deadline) break;
    // A blocker that answered may have started a thread: list them again.
    if (!found && blockers.size() == silent) break;
  }
  optedOut.insert(blockers.begin(), blockers.end());
  return 0;
}

// kernel_ipc_signals_v1's change_mask. noexcept: no exception may reach
// another copy's code.
int ChangeMask(int how, SignalBits signals) noexcept {
  try {
    std::lock_guard<std::mutex> lock(changing);
    if (int errnum = Claim()) return errnum;
    SignalBits which = managed.load();
    SignalBits block = blocked.load();
    switch (how) {
      case SIG_BLOCK:
        which |= signals;
        block |= signals;
        break;
      case SIG_UNBLOCK:
        which |= signals;
        block &= ~signals;
        break;
      default:  // SIG_SETMASK
        which = Blockable();
        block = signals;
    }
    managed = which;
    blocked = block;
    uint64_t current = ++generation;

    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    Apply(&mask);
    pthread_sigmask(SIG_SETMASK, &mask, nullptr);
    return BroadcastMasks(current);
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
}

// The copy whose ChangeMask every copy uses: the first loaded that exports
// kernel_ipc_signals_v1 (this one, if no other). Node loads addons with
// RTLD_LOCAL, out of dlsym's global reach, so each object is asked in turn.
const KernelIpcSignals* FindAuthority() {
  std::vector<std::string> objects;
  // Listed first, opened after: the callback runs under the loader's lock.
  dl_iterate_phdr(
      [](struct dl_phdr_info* object, size_t, void* list) {
        static_cast<std::vector<std::string>*>(list)->emplace_back(object->dlpi_name);
        return 0;
      },
      &objects);
  for (const std::string& path : objects) {
    if (path.empty()) continue;  // the executable
    void* handle = dlopen(path.c_str(), RTLD_NOLOAD | RTLD_LAZY);
    if (handle == nullptr) continue;
    auto entry = reinterpret_cast<decltype(&kernel_ipc_signals_v1)>(dlsym(handle, "kernel_ipc_signals_v1"));
    // Its handle stays open, so the copy every copy relies on stays loaded.
    if (entry != nullptr) return entry();
    dlclose(handle);
  }
  return kernel_ipc_signals_v1();
}

// The file the mask signal's handler lives in, for the error naming it.
std::string HandlerFile() {
  struct sigaction current;
  Dl_info found;
  if (sigaction(MaskSignal(), nullptr, &current) == 0 &&
      dladdr(reinterpret_cast<void*>(current.sa_sigaction), &found) != 0 && found.dli_fname != nullptr) {
    return found.dli_fname;
  }
  return "unknown";
}

Napi::Object SiginfoToObject(Napi::Env env, const siginfo_t& info) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("signo", info.si_signo);
  result.Set("code", info.si_code);
  result.Set("pid", info.si_pid);
  result.Set("uid", static_cast<double>(info.si_uid));
  if (info.si_code == SI_QUEUE) result.Set("value", info.si_value.sival_int);
  return result;
}

// Waits for one of a set of blocked signals, taking it from the pending set.
class SigwaitCall : public BlockingCall {
 public:
  explicit SigwaitCall(SignalBits signals) : bits_(signals), signals_(ToSet(signals)) {}

  const char* Syscall() const override { return "sigwaitinfo"; }

  // Waits for the same signals take them in call order.
  std::string Line() const override { return "sigwaitinfo " + std::to_string(bits_); }

  int Run(bool block) override {
    static const struct timespec now = {0, 0};
    int signo = block ? sigwaitinfo(&signals_, &info_) : sigtimedwait(&signals_, &info_, &now);
    if (signo > 0) return 0;
    return !block && errno == EAGAIN ? kWouldBlock : errno;
  }

  Napi::Value Result(Napi::Env env) override { return SiginfoToObject(env, info_); }

  // Pending again, with its sender when the kernel allows (a queued signal),
  // else as if the process had sent it.
  void Abandon() override {
    if (syscall(SYS_rt_sigqueueinfo, getpid(), info_.si_signo, &info_) == -1) kill(getpid(), info_.si_signo);
  }

 private:
  SignalBits bits_;
  sigset_t signals_;
  siginfo_t info_ = {};
};

}  // namespace

Napi::Value SignalsInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("rtmin", SIGRTMIN);
  result.Set("rtmax", SIGRTMAX);
  Napi::Array reserved = Napi::Array::New(env, 2);
  reserved.Set(0u, WakeSignal());
  reserved.Set(1u, MaskSignal());
  result.Set("reserved", reserved);
  return result;
}

Napi::Value Sigprocmask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int how = info[0].As<Napi::Number>().Int32Value();
  SignalBits signals = BitsOf(info[1]) & Blockable();
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  Napi::Array previous = ToArray(env, ToBits(mask));
  // Blocking or unblocking nothing changes nothing: C's way to read the mask.
  if (signals == 0 && how != SIG_SETMASK) return previous;

  static const KernelIpcSignals* authority = FindAuthority();
  int errnum = authority->change_mask(how, signals);
  if (errnum == EBUSY) throw ErrnoError(env, errnum, "sigaction", HandlerFile().c_str());
  if (errnum != 0) throw ErrnoError(env, errnum, "sigprocmask");
  return previous;
}

Napi::Value Sigpending(const Napi::CallbackInfo& info) {
  sigset_t pending;
  sigpending(&pending);
  return ToArray(info.Env(), ToBits(pending));
}

Napi::Value Sigqueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  int signo = info[1].As<Napi::Number>().Int32Value();
  union sigval value;
  value.sival_ptr = nullptr;
  value.sival_int = info[2].As<Napi::Number>().Int32Value();
  if (sigqueue(pid, signo, value) == -1) throw ErrnoError(env, errno, "sigqueue");
  return env.Undefined();
}

Napi::Value SigwaitinfoAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ref = info[1].As<Napi::Boolean>().Value();
  // A signal already pending is taken here, with no thread.
  return CompleteOrStart(env, std::make_unique<SigwaitCall>(BitsOf(info[0])), ref);
}

}  // namespace kernel_ipc

const KernelIpcSignals* kernel_ipc_signals_v1() {
  static const KernelIpcSignals signals = {1, kernel_ipc::ChangeMask};
  return &signals;
}
