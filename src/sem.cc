#include "sem.h"

#include <errno.h>
#include <limits.h>
#include <sys/sem.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "env_data.h"
#include "errors.h"
#include "ipc.h"
#include "waiter.h"

namespace kernel_ipc {
namespace {

// JavaScript packs each operation into three uint16s: C's struct sembuf.
static_assert(sizeof(struct sembuf) == 3 * sizeof(uint16_t), "struct sembuf is three shorts");

// glibc leaves semctl's fourth argument for the caller to define.
union semun {
  int val;
  struct semid_ds* buf;
  unsigned short* array;
  struct seminfo* __buf;
};

// When a semtimedop gives up (never, for a negative timeout). A deadline
// rather than a duration, so that a call made again after EINTR waits only
// for what is left.
class Deadline {
 public:
  explicit Deadline(double timeoutMs) : forever_(timeoutMs < 0) {
    if (forever_) return;
    clock_gettime(CLOCK_MONOTONIC, &at_);
    double seconds = std::floor(timeoutMs / 1000);
    at_.tv_sec += static_cast<time_t>(seconds);
    at_.tv_nsec += static_cast<long>((timeoutMs - seconds * 1000) * 1e6);
    if (at_.tv_nsec >= 1000000000) {
      at_.tv_sec += 1;
      at_.tv_nsec -= 1000000000;
    }
  }

  bool forever() const { return forever_; }

  // The time left, zero once the deadline has passed: semtimedop then still
  // tries the operations once, and fails with EAGAIN if they would wait.
  struct timespec Left() const {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct timespec left = {at_.tv_sec - now.tv_sec, at_.tv_nsec - now.tv_nsec};
    if (left.tv_nsec < 0) {
      left.tv_sec -= 1;
      left.tv_nsec += 1000000000;
    }
    if (left.tv_sec < 0) left = {0, 0};
    return left;
  }

  bool Passed() const {
    if (forever_) return false;
    struct timespec left = Left();
    return left.tv_sec == 0 && left.tv_nsec == 0;
  }

 private:
  bool forever_;
  struct timespec at_ = {};
};

const char* SyscallOf(const Deadline& deadline) {
  return deadline.forever() ? "semop" : "semtimedop";
}

// One semop, or semtimedop with the time left.
int Operate(int semid, struct sembuf* ops, size_t count, const Deadline& deadline) {
  if (deadline.forever()) return ::semop(semid, ops, count);
  struct timespec left = deadline.Left();
  return ::semtimedop(semid, ops, count, &left);
}

// The operations, each with IPC_NOWAIT: EAGAIN where one would wait.
std::vector<struct sembuf> NoWait(const struct sembuf* ops, size_t count) {
  std::vector<struct sembuf> nowait(ops, ops + count);
  for (struct sembuf& op : nowait) op.sem_flg |= IPC_NOWAIT;
  return nowait;
}

// Whether the operations can wait: one lacks IPC_NOWAIT.
bool CanWait(const struct sembuf* ops, size_t count) {
  return std::any_of(ops, ops + count, [](const struct sembuf& op) { return !(op.sem_flg & IPC_NOWAIT); });
}

// The first `count` operations of this environment's packed array (semopBuffer).
struct sembuf* PackedOps(const Napi::CallbackInfo& info, size_t* count) {
  const PackedSemops& packed = DataOf(info.Env()).semops;
  *count = info[1].As<Napi::Number>().Uint32Value();
  if (*count > packed.capacity) throw Napi::RangeError::New(info.Env(), "semop: more operations than semopBuffer holds");
  return packed.ops;
}

class SemopCall : public BlockingCall {
 public:
  // Copies the operations: the JavaScript array is reused by the next call.
  SemopCall(int semid, const struct sembuf* ops, size_t count, double timeoutMs)
      : semid_(semid), ops_(ops, ops + count), nowait_(NoWait(ops, count)), deadline_(timeoutMs) {
    // The inverse, made now so that giving back allocates nothing: each
    // operation negated, last first. A decrement by SHRT_MIN can never
    // complete (values stop at SEMVMX), so it never needs giving back.
    for (auto op = ops_.rbegin(); op != ops_.rend(); ++op) {
      if (op->sem_op == 0 || op->sem_op == SHRT_MIN) continue;
      struct sembuf back = *op;
      back.sem_op = static_cast<short>(-op->sem_op);
      back.sem_flg |= IPC_NOWAIT;
      inverse_.push_back(back);
    }
  }

  const char* Syscall() const override { return SyscallOf(deadline_); }

  // The same operations on the same set, with no deadline of their own,
  // wait for the same thing and are served in call order.
  std::string Line() const override {
    if (!deadline_.forever()) return "";
    std::string line = "semop " + std::to_string(semid_);
    for (const struct sembuf& op : ops_) {
      line += " " + std::to_string(op.sem_num) + ":" + std::to_string(op.sem_op) + ":" + std::to_string(op.sem_flg);
    }
    return line;
  }

  int Run(bool block) override {
    if (!block) {
      if (::semop(semid_, nowait_.data(), nowait_.size()) == 0) return 0;
      if (errno != EAGAIN) return started() ? ErrnoAfterWaiting(errno) : errno;
      // Operations that may not wait fail as C's would.
      return MustNotWait() ? EAGAIN : kWouldBlock;
    }
    return Operate(semid_, ops_.data(), ops_.size(), deadline_) == 0 ? 0 : ErrnoAfterWaiting(errno);
  }

  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

  // JavaScript never heard that the operations happened: undo them, all at
  // once and without waiting, or leave them if that cannot be done.
  void Abandon() override {
    if (!inverse_.empty()) ::semop(semid_, inverse_.data(), inverse_.size());
  }

 private:
  // Whether it fails rather than wait when the operations cannot proceed.
  bool MustNotWait() const { return deadline_.Passed() || !CanWait(ops_.data(), ops_.size()); }

  int semid_;
  std::vector<struct sembuf> ops_;
  std::vector<struct sembuf> nowait_;
  std::vector<struct sembuf> inverse_;
  Deadline deadline_;
};

struct semid_ds StatOf(Napi::Env env, int semid) {
  struct semid_ds ds;
  union semun arg;
  arg.buf = &ds;
  if (::semctl(semid, 0, IPC_STAT, arg) == -1) throw ErrnoError(env, errno, "semctl");
  return ds;
}

Napi::Object SemidDsToObject(Napi::Env env, const struct semid_ds& ds) {
  Napi::Object result = PermissionsToObject(env, ds.sem_perm);
  result.Set("nsems", static_cast<double>(ds.sem_nsems));
  result.Set("otime", static_cast<double>(ds.sem_otime));
  result.Set("ctime", static_cast<double>(ds.sem_ctime));
  return result;
}

Napi::Value GetAll(Napi::Env env, int semid) {
  std::vector<unsigned short> values(StatOf(env, semid).sem_nsems);
  union semun arg;
  arg.array = values.data();
  if (::semctl(semid, 0, GETALL, arg) == -1) throw ErrnoError(env, errno, "semctl");
  Napi::Array result = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); i++) result.Set(i, values[i]);
  return result;
}

// SETALL reads exactly nsems values, so a list of another length is EINVAL;
// one that does not fit C's unsigned short is over SEMVMX, so ERANGE.
void SetAll(Napi::Env env, int semid, Napi::Int32Array given) {
  std::vector<unsigned short> values(StatOf(env, semid).sem_nsems);
  if (given.ElementLength() != values.size()) throw ErrnoError(env, EINVAL, "semctl");
  for (size_t i = 0; i < values.size(); i++) {
    if (given[i] < 0 || given[i] > USHRT_MAX) throw ErrnoError(env, ERANGE, "semctl");
    values[i] = static_cast<unsigned short>(given[i]);
  }
  union semun arg;
  arg.array = values.data();
  if (::semctl(semid, 0, SETALL, arg) == -1) throw ErrnoError(env, errno, "semctl");
}

Napi::Value Limits(Napi::Env env, int cmd) {
  struct seminfo limits;
  union semun arg;
  arg.__buf = &limits;
  int highest = ::semctl(0, 0, cmd, arg);
  if (highest == -1) throw ErrnoError(env, errno, "semctl");
  Napi::Object result = Napi::Object::New(env);
  result.Set("semmap", limits.semmap);
  result.Set("semmni", limits.semmni);
  result.Set("semmns", limits.semmns);
  result.Set("semmnu", limits.semmnu);
  result.Set("semmsl", limits.semmsl);
  result.Set("semopm", limits.semopm);
  result.Set("semume", limits.semume);
  result.Set("semusz", limits.semusz);
  result.Set("semvmx", limits.semvmx);
  result.Set("semaem", limits.semaem);
  result.Set("highestIndex", highest);
  return result;
}

}  // namespace

Napi::Value Semget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  key_t key = info[0].As<Napi::Number>().Int32Value();
  int nsems = info[1].As<Napi::Number>().Int32Value();
  int flags = info[2].As<Napi::Number>().Int32Value();
  int semid = ::semget(key, nsems, flags);
  if (semid == -1) throw ErrnoError(env, errno, "semget");
  return Napi::Number::New(env, semid);
}

void SemopBuffer(const Napi::CallbackInfo& info) {
  auto array = info[0].As<Napi::Uint16Array>();
  PackedSemops& packed = DataOf(info.Env()).semops;
  // Held so that the memory the pointer refers to lives as long as it is used.
  packed.array = Napi::Persistent(array);
  packed.ops = reinterpret_cast<struct sembuf*>(array.Data());
  packed.capacity = array.ElementLength() / 3;
}

Napi::Value Semop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int semid = info[0].As<Napi::Number>().Int32Value();
  size_t count;
  struct sembuf* ops = PackedOps(info, &count);
  Deadline deadline(info[2].As<Napi::Number>().DoubleValue());
  long result = RetryBlocking(CanWait(ops, count), EAGAIN, [&](bool mayWait) {
    return mayWait ? Operate(semid, ops, count, deadline) : ::semop(semid, NoWait(ops, count).data(), count);
  });
  if (result == -1) throw ErrnoError(env, errno, SyscallOf(deadline));
  return env.Undefined();
}

Napi::Value SemopAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int semid = info[0].As<Napi::Number>().Int32Value();
  size_t count;
  struct sembuf* ops = PackedOps(info, &count);
  bool ref = info[3].As<Napi::Boolean>().Value();
  auto call = std::make_unique<SemopCall>(semid, ops, count, info[2].As<Napi::Number>().DoubleValue());
  // Operations that can proceed now complete here, with no thread.
  return CompleteOrStart(env, std::move(call), ref);
}

Napi::Value Semctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int semid = info[0].As<Napi::Number>().Int32Value();
  int semnum = info[1].As<Napi::Number>().Int32Value();
  int cmd = info[2].As<Napi::Number>().Int32Value();

  switch (cmd) {
    case GETVAL:
    case GETPID:
    case GETNCNT:
    case GETZCNT: {
      int result = ::semctl(semid, semnum, cmd);
      if (result == -1) throw ErrnoError(env, errno, "semctl");
      return Napi::Number::New(env, result);
    }
    case SETVAL: {
      union semun arg;
      arg.val = info[3].As<Napi::Number>().Int32Value();
      if (::semctl(semid, semnum, SETVAL, arg) == -1) throw ErrnoError(env, errno, "semctl");
      return env.Undefined();
    }
    case GETALL:
      return GetAll(env, semid);
    case SETALL:
      SetAll(env, semid, info[3].As<Napi::Int32Array>());
      return env.Undefined();
    case IPC_STAT:
    case SEM_STAT: {
      struct semid_ds ds;
      union semun arg;
      arg.buf = &ds;
      int result = ::semctl(semid, 0, cmd, arg);
      if (result == -1) throw ErrnoError(env, errno, "semctl");
      Napi::Object stat = SemidDsToObject(env, ds);
      if (cmd == SEM_STAT) stat.Set("id", result);
      return stat;
    }
    case IPC_SET: {
      // IPC_SET writes uid, gid and mode together: keep what was not given.
      struct semid_ds ds = StatOf(env, semid);
      ChangePermissions(info, 4, ds.sem_perm);
      union semun arg;
      arg.buf = &ds;
      if (::semctl(semid, 0, IPC_SET, arg) == -1) throw ErrnoError(env, errno, "semctl");
      return env.Undefined();
    }
    case IPC_INFO:
    case SEM_INFO:
      return Limits(env, cmd);
    default:  // IPC_RMID and anything the kernel rejects
      if (::semctl(semid, semnum, cmd) == -1) throw ErrnoError(env, errno, "semctl");
      return env.Undefined();
  }
}

}  // namespace kernel_ipc
