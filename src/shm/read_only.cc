#include "shm/read_only.h"

#include <errno.h>
#include <string.h>
#include <sys/shm.h>

#include "errors.h"
#include "shm/map_count.h"

namespace kernel_ipc {
namespace {

// A SHM_RDONLY mapping. The CPU faults on any write to it, so no ArrayBuffer
// is ever made over it: JavaScript holds this behind an External and reads
// through ShmReadOnlyCopy, which checks every bound. Owned by the External's
// finalizer; used only on the thread of the environment that made it.
struct ReadOnlyMapping {
  void* address;
  size_t size;
  bool attached;
};

const napi_type_tag kReadOnlyMappingTag = {0x6b65726e656c2d69, 0x70632d726f6d6170};

void FinalizeReadOnlyMapping(Napi::Env, ReadOnlyMapping* mapping) {
  if (mapping->attached) {
    ::shmdt(mapping->address);
    GiveMapping();
  }
  delete mapping;
}

// The mapping behind an External made by MakeReadOnlyMapping, or nullptr for anything else.
ReadOnlyMapping* ReadOnlyMappingOf(Napi::Value value) {
  if (!value.IsExternal()) return nullptr;
  auto external = value.As<Napi::External<ReadOnlyMapping>>();
  if (!external.CheckTypeTag(&kReadOnlyMappingTag)) return nullptr;
  return external.Data();
}

}  // namespace

Napi::Value MakeReadOnlyMapping(Napi::Env env, void* address, size_t size) {
  auto* mapping = new ReadOnlyMapping{address, size, true};
  Napi::External<ReadOnlyMapping> external;
  try {
    external = Napi::External<ReadOnlyMapping>::New(env, mapping, FinalizeReadOnlyMapping);
  } catch (...) {
    ::shmdt(address);
    GiveMapping();
    delete mapping;
    throw;
  }
  external.TypeTag(&kReadOnlyMappingTag);
  return external;
}

bool DetachReadOnlyMapping(Napi::Env env, Napi::Value value) {
  ReadOnlyMapping* mapping = ReadOnlyMappingOf(value);
  if (mapping == nullptr) return false;
  if (!mapping->attached) throw ErrnoError(env, EINVAL, "shmdt");
  mapping->attached = false;
  int result = ::shmdt(mapping->address);
  GiveMapping();
  if (result == -1) throw ErrnoError(env, errno, "shmdt");
  return true;
}

Napi::Value ShmReadOnlySize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReadOnlyMapping* mapping = ReadOnlyMappingOf(info[0]);
  if (mapping == nullptr) throw Napi::TypeError::New(env, "expected a read-only mapping");
  return Napi::Number::New(env, mapping->attached ? static_cast<double>(mapping->size) : 0);
}

Napi::Value ShmReadOnlyCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReadOnlyMapping* mapping = ReadOnlyMappingOf(info[0]);
  napi_typedarray_type type;
  size_t targetSize = 0;
  void* target = nullptr;
  if (mapping == nullptr || !info[3].IsTypedArray() ||
      napi_get_typedarray_info(env, info[3], &type, &targetSize, &target, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    throw Napi::TypeError::New(env, "expected a read-only mapping and a Uint8Array");
  }
  double sourceStart = info[1].As<Napi::Number>().DoubleValue();
  double count = info[2].As<Napi::Number>().DoubleValue();
  double targetStart = info[4].As<Napi::Number>().DoubleValue();
  size_t size = mapping->attached ? mapping->size : 0;
  // Every bound is checked here, whatever the caller validated: a copy out of
  // range would read unmapped memory or write past the target.
  if (!(sourceStart >= 0 && count >= 0 && targetStart >= 0) ||
      sourceStart + count > static_cast<double>(size) ||
      targetStart + count > static_cast<double>(targetSize)) {
    return Napi::Number::New(env, -1);
  }
  if (count == 0) return Napi::Number::New(env, 0);
  memcpy(static_cast<uint8_t*>(target) + static_cast<size_t>(targetStart),
         static_cast<uint8_t*>(mapping->address) + static_cast<size_t>(sourceStart),
         static_cast<size_t>(count));
  return Napi::Number::New(env, count);
}

}  // namespace kernel_ipc
