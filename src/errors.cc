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
                                const std::string& description) {
  Napi::FunctionReference& errorClass = DataOf(env).errorClass;
  // Only a caller loading the binary without lib/ gets here without a class.
  if (errorClass.IsEmpty()) {
    return Napi::Error::New(env, std::string(syscall) + ": " + description);
  }
  return Napi::Error(env, errorClass.New({Napi::Number::New(env, errnum), Napi::String::New(env, syscall),
                                          Napi::String::New(env, description)}));
}

Napi::Error ErrnoError(Napi::Env env, int errnum, const char* syscall,
                       const char* path) {
  char buffer[256];
  // GNU strerror_r: returns a pointer to the text, not always into buffer.
  const char* description = strerror_r(errnum, buffer, sizeof buffer);
  if (path == nullptr) return DescribedErrnoError(env, errnum, syscall, description);
  Napi::FunctionReference& errorClass = DataOf(env).errorClass;
  if (errorClass.IsEmpty()) {
    return Napi::Error::New(env, std::string(syscall) + ": " + description + " '" + path + "'");
  }
  return Napi::Error(env, errorClass.New({Napi::Number::New(env, errnum), Napi::String::New(env, syscall),
                                          Napi::String::New(env, description), Napi::String::New(env, path)}));
}

}  // namespace kernel_ipc
