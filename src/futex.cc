#include "futex.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <memory>

#include "errors.h"
#include "shm/attachment.h"
#include "waiter.h"

namespace kernel_ipc {
namespace {

// Keeps an attachment's mapping while it lives (see HoldAttachment).
using Hold = std::unique_ptr<void, void (*)(void*)>;

// Word `index` of `view`, with a hold on its mapping. TypeScript checked both
// already, with intrinsics taken at load; checked again here, from what V8
// knows of the view, since nothing may reach memory outside an attachment.
int32_t* WordOf(const Napi::CallbackInfo& info, Hold& hold) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw Napi::TypeError::New(env, "The \"view\" argument must be an Int32Array over a shared memory attachment");
  }
  auto view = info[0].As<Napi::Int32Array>();
  int64_t index = info[1].As<Napi::Number>().Int64Value();
  if (index < 0 || static_cast<size_t>(index) >= view.ElementLength()) {
    throw Napi::RangeError::New(env, "The value of \"index\" is out of range");
  }
  void* held = HoldAttachment(view.ArrayBuffer());
  if (held == nullptr) throw Napi::TypeError::New(env, "The \"view\" argument must be an Int32Array over a shared memory attachment");
  hold = Hold(held, ReleaseAttachment);
  return view.Data() + index;
}

int32_t Load(const int32_t* word) {
  return reinterpret_cast<const std::atomic<int32_t>*>(word)->load(std::memory_order_seq_cst);
}

// Where a wait of `timeoutMs` (< 0: for ever) ends, on CLOCK_MONOTONIC, which
// FUTEX_WAIT_BITSET measures absolutely, so that a wait restarted after
// EINTR still ends on time.
struct Deadline {
  bool forever;
  struct timespec at;
};

Deadline DeadlineAfter(double timeoutMs) {
  Deadline deadline{timeoutMs < 0, {0, 0}};
  if (deadline.forever) return deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline.at);
  double seconds = timeoutMs / 1000;
  // Far enough is for ever: time_t would overflow.
  if (seconds > 1e12) {
    deadline.forever = true;
    return deadline;
  }
  auto whole = static_cast<time_t>(seconds);
  deadline.at.tv_sec += whole;
  deadline.at.tv_nsec += static_cast<long>((seconds - static_cast<double>(whole)) * 1e9);
  if (deadline.at.tv_nsec >= 1000000000L) {
    deadline.at.tv_sec += 1;
    deadline.at.tv_nsec -= 1000000000L;
  }
  return deadline;
}

bool Passed(const Deadline& deadline) {
  if (deadline.forever) return false;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec > deadline.at.tv_sec || (now.tv_sec == deadline.at.tv_sec && now.tv_nsec >= deadline.at.tv_nsec);
}

long FutexWaitUntil(int32_t* word, int32_t expected, const Deadline& deadline) {
  return syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, deadline.forever ? nullptr : &deadline.at, nullptr,
                 FUTEX_BITSET_MATCH_ANY);
}

enum Outcome { kOk, kNotEqual, kTimedOut };

Napi::Value OutcomeToString(Napi::Env env, Outcome outcome) {
  static const char* const names[] = {"ok", "not-equal", "timed-out"};
  return Napi::String::New(env, names[outcome]);
}

// One wait in the kernel: 0 and its outcome, or its errno (EINTR: interrupted).
int WaitOnce(int32_t* word, int32_t expected, const Deadline& deadline, Outcome* outcome) {
  if (FutexWaitUntil(word, expected, deadline) == 0) {
    *outcome = kOk;
  } else if (errno == EAGAIN) {
    *outcome = kNotEqual;
  } else if (errno == ETIMEDOUT) {
    *outcome = kTimedOut;
  } else {
    return errno;
  }
  return 0;
}

// Without waiting: the outcome if there is one, else -1 (the wait must block).
int Immediate(const int32_t* word, int32_t expected, const Deadline& deadline) {
  if (Load(word) != expected) return kNotEqual;
  if (Passed(deadline)) return kTimedOut;
  return -1;
}

class WaitCall : public BlockingCall {
 public:
  WaitCall(int32_t* word, Hold hold, int32_t expected, Deadline deadline)
      : word_(word), hold_(std::move(hold)), expected_(expected), deadline_(deadline) {}

  const char* Syscall() const override { return "futex"; }

  // Each wait has a line, and so a thread, of its own: waits sharing one
  // would take turns, and a wake for all would find only the first waiting.
  int Run(bool block) override {
    if (!block) {
      int outcome = Immediate(word_, expected_, deadline_);
      if (outcome < 0) return kWouldBlock;
      outcome_ = static_cast<Outcome>(outcome);
      return 0;
    }
    return WaitOnce(word_, expected_, deadline_, &outcome_);
  }

  Napi::Value Result(Napi::Env env) override { return OutcomeToString(env, outcome_); }

 private:
  int32_t* word_;
  Hold hold_;  // keeps word_ mapped until the call is gone
  int32_t expected_;
  Deadline deadline_;
  Outcome outcome_ = kOk;
};

}  // namespace

Napi::Value FutexWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Hold hold(nullptr, ReleaseAttachment);
  int32_t* word = WordOf(info, hold);
  int32_t expected = info[2].As<Napi::Number>().Int32Value();
  Deadline deadline = DeadlineAfter(info[3].As<Napi::Number>().DoubleValue());
  Outcome outcome = kOk;
  // A wait that would block has nothing to report after EINTR but to wait
  // again; once the process is exiting it fails with EINTR instead.
  long result = RetryBlocking(true, EWOULDBLOCK, [&](bool mayWait) -> long {
    if (!mayWait) {
      int immediate = Immediate(word, expected, deadline);
      if (immediate < 0) {
        errno = EWOULDBLOCK;  // it would wait
        return -1;
      }
      outcome = static_cast<Outcome>(immediate);
      return 0;
    }
    int failed = WaitOnce(word, expected, deadline, &outcome);
    errno = failed;
    return failed == 0 ? 0 : -1;
  });
  if (result == -1) throw ErrnoError(env, errno, "futex");
  return OutcomeToString(env, outcome);
}

Napi::Value FutexWaitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Hold hold(nullptr, ReleaseAttachment);
  int32_t* word = WordOf(info, hold);
  int32_t expected = info[2].As<Napi::Number>().Int32Value();
  Deadline deadline = DeadlineAfter(info[3].As<Napi::Number>().DoubleValue());
  bool ref = info[4].As<Napi::Boolean>().Value();
  return CompleteOrStart(env, std::make_unique<WaitCall>(word, std::move(hold), expected, deadline), ref);
}

Napi::Value FutexWake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Hold hold(nullptr, ReleaseAttachment);
  int32_t* word = WordOf(info, hold);
  double count = info[2].As<Napi::Number>().DoubleValue();
  int wake = count >= INT_MAX ? INT_MAX : static_cast<int>(count);
  long woken = syscall(SYS_futex, word, FUTEX_WAKE, wake, nullptr, nullptr, 0);
  if (woken == -1) throw ErrnoError(env, errno, "futex");
  return Napi::Number::New(env, static_cast<double>(woken));
}

Napi::Value SchedYield(const Napi::CallbackInfo& info) {
  sched_yield();
  return info.Env().Undefined();
}

}  // namespace kernel_ipc
