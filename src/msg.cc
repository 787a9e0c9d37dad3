#include "msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>

#include <memory>
#include <string>
#include <vector>

// glibc declares MSG_COPY (Linux 3.8); musl does not. The kernel's value.
#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

#include "errors.h"
#include "ipc.h"
#include "waiter.h"

namespace kernel_ipc {
namespace {

struct FreeDeleter {
  void operator()(char* bytes) const { free(bytes); }
};

// C's struct msgbuf: a long mtype, then up to `capacity` payload bytes. On
// the heap, so a waiter thread can own it; malloc, so running out of memory
// is ENOMEM rather than an abort.
class MessageBuffer {
 public:
  MessageBuffer(Napi::Env env, size_t capacity, const char* syscall)
      : capacity_(capacity),
        bytes_(static_cast<char*>(malloc(sizeof(long) + capacity))) {
    if (!bytes_) throw ErrnoError(env, ENOMEM, syscall);
  }

  void* get() const { return bytes_.get(); }
  size_t capacity() const { return capacity_; }
  long type() const { return *reinterpret_cast<const long*>(bytes_.get()); }
  void set_type(long type) { *reinterpret_cast<long*>(bytes_.get()) = type; }
  char* payload() const { return bytes_.get() + sizeof(long); }

 private:
  size_t capacity_;
  std::unique_ptr<char, FreeDeleter> bytes_;
};

// The message msgsnd(msqid, type, data, flags) sends, copied out of `data`.
MessageBuffer OutgoingMessage(const Napi::CallbackInfo& info) {
  auto data = info[2].As<Napi::Uint8Array>();
  MessageBuffer message(info.Env(), data.ByteLength(), "msgsnd");
  message.set_type(info[1].As<Napi::Number>().Int64Value());
  if (message.capacity() > 0) memcpy(message.payload(), data.Data(), message.capacity());
  return message;
}

Napi::Value MessageToObject(Napi::Env env, const MessageBuffer& message, size_t size) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("type", static_cast<double>(message.type()));
  result.Set("data", Napi::Buffer<char>::Copy(env, message.payload(), size));
  return result;
}

// A message to put back on a full queue, once there is room.
struct LaterGiveBack {
  int msqid;
  std::vector<char> bytes;  // long mtype, then the payload
};

void* GiveBackWhenRoom(void* arg) {
  std::unique_ptr<LaterGiveBack> later(static_cast<LaterGiveBack*>(arg));
  while (::msgsnd(later->msqid, later->bytes.data(), later->bytes.size() - sizeof(long), 0) == -1 && errno == EINTR) {
  }
  return nullptr;
}

// Puts a received message back (at the end of its queue) when it cannot be
// handed to JavaScript, rather than drop it; MSG_COPY took nothing. If the
// queue is full, a thread of its own waits for room, for as long as the
// process lives (and the queue: EIDRM drops it).
void GiveBack(int msqid, const MessageBuffer& message, size_t size, int flags) {
  if (flags & MSG_COPY) return;
  if (::msgsnd(msqid, message.get(), size, IPC_NOWAIT) == 0 || errno != EAGAIN) return;
  auto* later = new LaterGiveBack{msqid, std::vector<char>(static_cast<char*>(message.get()),
                                                           message.payload() + size)};
  pthread_t thread;
  if (StartQuietThread(&thread, GiveBackWhenRoom, later, 64 * 1024) != 0) {
    delete later;
    return;
  }
  pthread_detach(thread);
}

// The received message as JavaScript sees it; if that fails (out of memory,
// or a worker being terminated), the message goes back on its queue.
Napi::Value Deliverable(Napi::Env env, int msqid, const MessageBuffer& message, size_t size, int flags) {
  try {
    return MessageToObject(env, message, size);
  } catch (const Napi::Error&) {
    GiveBack(msqid, message, size, flags);
    throw;
  }
}

class SendCall : public BlockingCall {
 public:
  SendCall(int msqid, MessageBuffer message, int flags)
      : msqid_(msqid), message_(std::move(message)), flags_(flags) {}

  const char* Syscall() const override { return "msgsnd"; }

  int Run(bool block) override {
    int flags = block ? flags_ : flags_ | IPC_NOWAIT;
    if (::msgsnd(msqid_, message_.get(), message_.capacity(), flags) == 0) return 0;
    if (!block && errno == EAGAIN && !(flags_ & IPC_NOWAIT)) return kWouldBlock;
    return started() ? ErrnoAfterWaiting(errno) : errno;
  }

  // Sends to one queue leave in call order.
  std::string Line() const override { return "msgsnd " + std::to_string(msqid_); }

  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  int msqid_;
  MessageBuffer message_;
  int flags_;
};

class ReceiveCall : public BlockingCall {
 public:
  ReceiveCall(int msqid, MessageBuffer message, long type, int flags)
      : msqid_(msqid), message_(std::move(message)), type_(type), flags_(flags) {}

  const char* Syscall() const override { return "msgrcv"; }

  // MSG_COPY without IPC_NOWAIT is left as given, so that the kernel refuses
  // it as it would in C.
  int Run(bool block) override {
    int flags = block || (flags_ & MSG_COPY) ? flags_ : flags_ | IPC_NOWAIT;
    ssize_t size = ::msgrcv(msqid_, message_.get(), message_.capacity(), type_, flags);
    if (size >= 0) {
      size_ = static_cast<size_t>(size);
      return 0;
    }
    if (!block && errno == ENOMSG && flags != flags_) return kWouldBlock;
    return started() ? ErrnoAfterWaiting(errno) : errno;
  }

  // Receives that select the same messages, into the same room, are served
  // in call order, as the kernel serves its waiting receivers.
  std::string Line() const override {
    return "msgrcv " + std::to_string(msqid_) + " " + std::to_string(type_) + " " + std::to_string(flags_) + " " +
           std::to_string(message_.capacity());
  }

  Napi::Value Result(Napi::Env env) override { return MessageToObject(env, message_, size_); }

  void Abandon() override { GiveBack(msqid_, message_, size_, flags_); }

 private:
  int msqid_;
  MessageBuffer message_;
  long type_;
  int flags_;
  size_t size_ = 0;
};

Napi::Object MsqidDsToObject(Napi::Env env, const struct msqid_ds& ds) {
  Napi::Object result = PermissionsToObject(env, ds.msg_perm);
  result.Set("qnum", static_cast<double>(ds.msg_qnum));
  result.Set("qbytes", static_cast<double>(ds.msg_qbytes));
  result.Set("cbytes", static_cast<double>(ds.__msg_cbytes));
  result.Set("lspid", ds.msg_lspid);
  result.Set("lrpid", ds.msg_lrpid);
  result.Set("stime", static_cast<double>(ds.msg_stime));
  result.Set("rtime", static_cast<double>(ds.msg_rtime));
  result.Set("ctime", static_cast<double>(ds.msg_ctime));
  return result;
}

}  // namespace

Napi::Value Msgget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  key_t key = info[0].As<Napi::Number>().Int32Value();
  int flags = info[1].As<Napi::Number>().Int32Value();
  int msqid = ::msgget(key, flags);
  if (msqid == -1) throw ErrnoError(env, errno, "msgget");
  return Napi::Number::New(env, msqid);
}

Napi::Value Msgsnd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int msqid = info[0].As<Napi::Number>().Int32Value();
  int flags = info[3].As<Napi::Number>().Int32Value();
  MessageBuffer message = OutgoingMessage(info);
  long result = RetryBlocking(!(flags & IPC_NOWAIT), EAGAIN, [&](bool mayWait) {
    return ::msgsnd(msqid, message.get(), message.capacity(), mayWait ? flags : flags | IPC_NOWAIT);
  });
  if (result == -1) throw ErrnoError(env, errno, "msgsnd");
  return env.Undefined();
}

Napi::Value Msgrcv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int msqid = info[0].As<Napi::Number>().Int32Value();
  MessageBuffer message(env, static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue()), "msgrcv");
  long type = info[2].As<Napi::Number>().Int64Value();
  int flags = info[3].As<Napi::Number>().Int32Value();
  long size = RetryBlocking(!(flags & IPC_NOWAIT), ENOMSG, [&](bool mayWait) {
    return ::msgrcv(msqid, message.get(), message.capacity(), type, mayWait || (flags & MSG_COPY) ? flags : flags | IPC_NOWAIT);
  });
  if (size == -1) throw ErrnoError(env, errno, "msgrcv");
  return Deliverable(env, msqid, message, static_cast<size_t>(size), flags);
}

Napi::Value MsgsndAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int msqid = info[0].As<Napi::Number>().Int32Value();
  int flags = info[3].As<Napi::Number>().Int32Value();
  bool ref = info[4].As<Napi::Boolean>().Value();
  MessageBuffer message = OutgoingMessage(info);
  return CompleteOrStart(env, std::make_unique<SendCall>(msqid, std::move(message), flags), ref);
}

Napi::Value MsgrcvAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int msqid = info[0].As<Napi::Number>().Int32Value();
  MessageBuffer message(env, static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue()), "msgrcv");
  long type = info[2].As<Napi::Number>().Int64Value();
  int flags = info[3].As<Napi::Number>().Int32Value();
  bool ref = info[4].As<Napi::Boolean>().Value();
  return CompleteOrStart(env, std::make_unique<ReceiveCall>(msqid, std::move(message), type, flags), ref);
}

Napi::Value Msgctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int msqid = info[0].As<Napi::Number>().Int32Value();
  int cmd = info[1].As<Napi::Number>().Int32Value();

  switch (cmd) {
    case IPC_STAT:
    case MSG_STAT: {
      struct msqid_ds ds;
      int result = ::msgctl(msqid, cmd, &ds);
      if (result == -1) throw ErrnoError(env, errno, "msgctl");
      Napi::Object stat = MsqidDsToObject(env, ds);
      if (cmd == MSG_STAT) stat.Set("id", result);
      return stat;
    }
    case IPC_SET: {
      int64_t qbytes = info[5].As<Napi::Number>().Int64Value();
      // IPC_SET writes all four together: keep what was not given.
      struct msqid_ds ds;
      if (::msgctl(msqid, IPC_STAT, &ds) == -1) throw ErrnoError(env, errno, "msgctl");
      ChangePermissions(info, 2, ds.msg_perm);
      if (qbytes >= 0) ds.msg_qbytes = static_cast<msglen_t>(qbytes);
      if (::msgctl(msqid, IPC_SET, &ds) == -1) throw ErrnoError(env, errno, "msgctl");
      return env.Undefined();
    }
    case IPC_INFO:
    case MSG_INFO: {
      struct msginfo limits;
      int highest = ::msgctl(0, cmd, reinterpret_cast<struct msqid_ds*>(&limits));
      if (highest == -1) throw ErrnoError(env, errno, "msgctl");
      Napi::Object result = Napi::Object::New(env);
      result.Set("msgpool", limits.msgpool);
      result.Set("msgmap", limits.msgmap);
      result.Set("msgmax", limits.msgmax);
      result.Set("msgmnb", limits.msgmnb);
      result.Set("msgmni", limits.msgmni);
      result.Set("msgssz", limits.msgssz);
      result.Set("msgtql", limits.msgtql);
      result.Set("msgseg", limits.msgseg);
      result.Set("highestIndex", highest);
      return result;
    }
    default:  // IPC_RMID and anything the kernel rejects
      if (::msgctl(msqid, cmd, nullptr) == -1) throw ErrnoError(env, errno, "msgctl");
      return env.Undefined();
  }
}

}  // namespace kernel_ipc
