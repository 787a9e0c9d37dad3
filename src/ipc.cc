#include "ipc.h"

#include <errno.h>
#include <sys/ipc.h>

#include <string>

#include "errors.h"

namespace kernel_ipc {

Napi::Value Ftok(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  int projId = info[1].As<Napi::Number>().Int32Value();
  errno = 0;
  key_t key = ::ftok(path.c_str(), projId);
  // -1 is also a valid key (all bits set), so errno tells the two apart.
  if (key == -1 && errno != 0) throw ErrnoError(env, errno, "ftok", path.c_str());
  return Napi::Number::New(env, key);
}

}  // namespace kernel_ipc
