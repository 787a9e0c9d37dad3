#include "fifo.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "errors.h"
#include "waiter.h"

namespace kernel_ipc {
namespace {

// Retries when a signal interrupts, unless `interruptible`: a waiter's open
// must return EINTR when the wake signal cancels it.
int OpenFifo(const std::string& path, int flags, bool interruptible = false) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC | O_NOCTTY);
  } while (fd == -1 && errno == EINTR && !interruptible);
  return fd;
}

// Opening a FIFO for writing blocks until it has a reader: that wait happens
// here, on a waiter thread, which the wake signal interrupts (EINTR).
class OpenWriterCall : public BlockingCall {
 public:
  explicit OpenWriterCall(std::string path) : path_(std::move(path)) {}

  const char* Syscall() const override { return "open"; }
  const char* Path() const override { return path_.c_str(); }

  // One reader lets every waiting writer in: the first to wait is the first
  // to open, and the rest open at once after it.
  std::string Line() const override { return "open " + path_; }

  int Run(bool block) override {
    int fd = OpenFifo(path_, O_WRONLY | (block ? 0 : O_NONBLOCK), block);
    if (fd == -1) return !block && errno == ENXIO ? kWouldBlock : errno;
    fd_ = fd;
    return 0;
  }

  // From here on the descriptor is JavaScript's to close.
  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    result.Set("fd", fd_);
    return result;
  }

  // All that can be given back: a reader that saw this writer arrive sees it
  // leave (end of file) without data.
  void Abandon() override { ::close(fd_); }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace

Napi::Value Mkfifo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  mode_t mode = info[1].As<Napi::Number>().Uint32Value();
  if (::mkfifo(path.c_str(), mode) == -1) throw ErrnoError(env, errno, "mkfifo", path.c_str());
  return env.Undefined();
}

Napi::Value FifoOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  bool forWriting = info[1].As<Napi::Boolean>().Value();
  int fd = OpenFifo(path, (forWriting ? O_WRONLY : O_RDONLY) | O_NONBLOCK);
  if (fd == -1) throw ErrnoError(env, errno, "open", path.c_str());
  return Napi::Number::New(env, fd);
}

Napi::Value FifoOpenWriterAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  bool ref = info[1].As<Napi::Boolean>().Value();
  // A FIFO that has a reader opens here, with no thread.
  return CompleteOrStart(env, std::make_unique<OpenWriterCall>(std::move(path)), ref);
}

}  // namespace kernel_ipc
