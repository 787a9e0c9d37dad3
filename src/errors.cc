#include "errors.h"

#include <string.h>

#include <string>
#include <vector>

#include "env_data.h"

namespace kernel_ipc {

void SetErrorClass(const Napi::CallbackInfo& info) {
  DataOf(info.Env()).errorClass =
      Napi::Persistent(info[0].As<Napi::Function>());
}

Napi::Error DescribedErrnoError(Napi::Env env, int errnum, const char* syscall,
                                const std::string& description, const char* path) {
  Napi::FunctionReference& errorClass = DataOf(env).errorClass;
  // Only a caller loading the binary without lib/ gets here without a class.
  if (errorClass.IsEmpty()) {
    std::string message = std::string(syscall) + ": " + description;
    return Napi::Error::New(env, path == nullptr ? message : message + " '" + path + "'");
  }
  std::vector<napi_value> args = {
      Napi::Number::New(env, errnum), Napi::String::New(env, syscall),
      Napi::String::New(env, description)};
  if (path != nullptr) args.push_back(Napi::String::New(env, path));
  return Napi::Error(env, errorClass.New(args));
}

// strerror_r is GNU's under glibc (returns the text, not always in the buffer) and the
// POSIX one under musl (returns 0 and fills the buffer): the overload taken says which.
inline const char* StrerrorText(const char* text, const char*) { return text; }
inline const char* StrerrorText(int failed, const char* buffer) {
  return failed == 0 ? buffer : "Unknown error";
}

Napi::Error ErrnoError(Napi::Env env, int errnum, const char* syscall,
                       const char* path) {
  char buffer[256];
  return DescribedErrnoError(env, errnum, syscall,
                             StrerrorText(strerror_r(errnum, buffer, sizeof buffer), buffer), path);
}

}  // namespace kernel_ipc
