// Registers the addon's exports; each concept lives in its own file.
#include <napi.h>

#include "errors.h"
#include "ipc.h"
#include "shm.h"

namespace kernel_ipc {
namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass));
  exports.Set("ftok", Napi::Function::New(env, Ftok));
  exports.Set("shmget", Napi::Function::New(env, Shmget));
  exports.Set("shmat", Napi::Function::New(env, Shmat));
  exports.Set("shmdt", Napi::Function::New(env, Shmdt));
  exports.Set("shmctl", Napi::Function::New(env, Shmctl));
  exports.Set("shmIsAttachment", Napi::Function::New(env, ShmIsAttachment));
  exports.Set("shmReadOnlySize", Napi::Function::New(env, ShmReadOnlySize));
  exports.Set("shmReadOnlyCopy", Napi::Function::New(env, ShmReadOnlyCopy));
  return exports;
}

}  // namespace

NODE_API_MODULE(kernel_ipc, Init)

}  // namespace kernel_ipc
