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

Napi::Object PermissionsToObject(Napi::Env env, const struct ipc_perm& perm) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("key", perm.__key);
  result.Set("uid", perm.uid);
  result.Set("gid", perm.gid);
  result.Set("cuid", perm.cuid);
  result.Set("cgid", perm.cgid);
  result.Set("mode", perm.mode);
  return result;
}

void ChangePermissions(const Napi::CallbackInfo& info, size_t first, struct ipc_perm& perm) {
  int64_t uid = info[first].As<Napi::Number>().Int64Value();
  int64_t gid = info[first + 1].As<Napi::Number>().Int64Value();
  int64_t mode = info[first + 2].As<Napi::Number>().Int64Value();
  if (uid >= 0) perm.uid = static_cast<uid_t>(uid);
  if (gid >= 0) perm.gid = static_cast<gid_t>(gid);
  if (mode >= 0) perm.mode = static_cast<unsigned short>(mode);
}

}  // namespace kernel_ipc
