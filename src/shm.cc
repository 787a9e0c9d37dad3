#include "shm.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>

#include <mutex>
#include <string>
#include <unordered_map>

#include "errors.h"
#include "ipc.h"

namespace kernel_ipc {
namespace {

// One writable shmat() mapping handed to JavaScript as an external Buffer.
// MakeBuffer owns it until the Buffer exists, then FinalizeAttachment does.
struct Attachment {
  void* address;
  bool created = false;
};

// The writable mappings this process has handed to JavaScript, by address.
// Addresses are process-wide, so one registry serves every thread. An entry
// exists exactly while its mapping does: it is removed before shmdt, under
// the lock, so each mapping is detached once, by whoever removes it.
class Registry {
 public:
  void Add(Attachment* attachment) {
    std::lock_guard<std::mutex> lock(mutex_);
    byAddress_[attachment->address] = attachment;
  }

  bool Contains(void* address) {
    std::lock_guard<std::mutex> lock(mutex_);
    return byAddress_.count(address) == 1;
  }

  // Removes `attachment` if it is still the one registered at its address.
  bool Remove(Attachment* attachment) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = byAddress_.find(attachment->address);
    if (it == byAddress_.end() || it->second != attachment) return false;
    byAddress_.erase(it);
    return true;
  }

  // Removes the entry at `address`; false if there is none.
  bool Take(void* address) {
    std::lock_guard<std::mutex> lock(mutex_);
    return byAddress_.erase(address) == 1;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<void*, Attachment*> byAddress_;
};

// Never destroyed: a worker's finalizers may still run while the process
// exits and static destructors are running.
Registry& Attachments() {
  static Registry* registry = new Registry();
  return *registry;
}

// Runs exactly once per Buffer: when its memory is freed after GC, or when
// its environment ends. After an explicit shmdt() the attachment is no
// longer registered and only the record is freed.
void FinalizeAttachment(napi_env, void*, void* hint) {
  auto* attachment = static_cast<Attachment*>(hint);
  // Node finalizes inside a failing napi_create_external_buffer; MakeBuffer
  // then cleans up itself.
  if (!attachment->created) return;
  if (Attachments().Remove(attachment)) ::shmdt(attachment->address);
  delete attachment;
}

// Anonymous memory left where an explicitly detached segment was mapped.
struct Placeholder {
  void* address;
  size_t size;
};

void UnmapPlaceholder(napi_env, void* data, void*) {
  auto* placeholder = static_cast<Placeholder*>(data);
  ::munmap(placeholder->address, placeholder->size);
  delete placeholder;
}

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
  if (mapping->attached) ::shmdt(mapping->address);
  delete mapping;
}

// The mapping behind an External made by Shmat, or nullptr for anything else.
ReadOnlyMapping* ReadOnlyMappingOf(Napi::Value value) {
  if (!value.IsExternal()) return nullptr;
  auto external = value.As<Napi::External<ReadOnlyMapping>>();
  if (!external.CheckTypeTag(&kReadOnlyMappingTag)) return nullptr;
  return external.Data();
}

Napi::Value MakeBuffer(Napi::Env env, void* address, size_t size) {
  auto* attachment = new Attachment{address};
  Attachments().Add(attachment);
  napi_value buffer;
  napi_status status = napi_create_external_buffer(
      env, size, address, FinalizeAttachment, attachment, &buffer);
  if (status != napi_ok) {
    if (Attachments().Remove(attachment)) ::shmdt(address);
    delete attachment;
    NAPI_THROW_IF_FAILED(env, status, Napi::Value());
  }
  attachment->created = true;
  return Napi::Value(env, buffer);
}

Napi::Object ShmidDsToObject(Napi::Env env, const struct shmid_ds& ds) {
  Napi::Object result = PermissionsToObject(env, ds.shm_perm);
  result.Set("segsz", static_cast<double>(ds.shm_segsz));
  result.Set("atime", static_cast<double>(ds.shm_atime));
  result.Set("dtime", static_cast<double>(ds.shm_dtime));
  result.Set("ctime", static_cast<double>(ds.shm_ctime));
  result.Set("cpid", ds.shm_cpid);
  result.Set("lpid", ds.shm_lpid);
  result.Set("nattch", static_cast<double>(ds.shm_nattch));
  return result;
}

}  // namespace

Napi::Value Shmget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  key_t key = info[0].As<Napi::Number>().Int32Value();
  size_t size = static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue());
  int flags = info[2].As<Napi::Number>().Int32Value();
  int shmid = ::shmget(key, size, flags);
  if (shmid == -1) throw ErrnoError(env, errno, "shmget");
  return Napi::Number::New(env, shmid);
}

Napi::Value Shmat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int shmid = info[0].As<Napi::Number>().Int32Value();
  int flags = info[1].As<Napi::Number>().Int32Value();
  double maxLength = info[2].As<Napi::Number>().DoubleValue();

  void* address = ::shmat(shmid, nullptr, flags);
  if (address == reinterpret_cast<void*>(-1)) {
    throw ErrnoError(env, errno, "shmat");
  }
  // Stat after attaching: the attachment pins the segment behind this id.
  struct shmid_ds ds;
  if (::shmctl(shmid, IPC_STAT, &ds) == -1) {
    int errnum = errno;
    ::shmdt(address);
    throw ErrnoError(env, errnum, "shmctl");
  }
  if (flags & SHM_RDONLY) {
    auto* mapping = new ReadOnlyMapping{address, ds.shm_segsz, true};
    Napi::External<ReadOnlyMapping> external;
    try {
      external = Napi::External<ReadOnlyMapping>::New(env, mapping, FinalizeReadOnlyMapping);
    } catch (...) {
      ::shmdt(address);
      delete mapping;
      throw;
    }
    external.TypeTag(&kReadOnlyMappingTag);
    return external;
  }
  if (static_cast<double>(ds.shm_segsz) > maxLength) {
    ::shmdt(address);
    Napi::Error error = Napi::RangeError::New(
        env, "Cannot create a Buffer larger than " +
                 std::to_string(static_cast<size_t>(maxLength)) +
                 " bytes: segment " + std::to_string(shmid) + " has " +
                 std::to_string(ds.shm_segsz) + " bytes");
    error.Set("code", "ERR_BUFFER_TOO_LARGE");
    throw error;
  }
  return MakeBuffer(env, address, ds.shm_segsz);
}

Napi::Value Shmdt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (ReadOnlyMapping* mapping = ReadOnlyMappingOf(info[0])) {
    if (!mapping->attached) throw ErrnoError(env, EINVAL, "shmdt");
    mapping->attached = false;
    if (::shmdt(mapping->address) == -1) throw ErrnoError(env, errno, "shmdt");
    return env.Undefined();
  }
  if (!info[0].IsArrayBuffer()) {
    throw Napi::TypeError::New(env, "shmdt: expected an ArrayBuffer");
  }
  Napi::ArrayBuffer arrayBuffer = info[0].As<Napi::ArrayBuffer>();
  void* address = arrayBuffer.Data();
  // Like C's shmdt: anything that is not a live attachment is EINVAL.
  if (address == nullptr || !Attachments().Contains(address)) {
    throw ErrnoError(env, EINVAL, "shmdt");
  }
  size_t size = arrayBuffer.ByteLength();
  // Detach every view before unmapping, so no JavaScript can reach the memory.
  // The attachment record stays with its finalizer, which will only free it.
  arrayBuffer.Detach();
  if (!Attachments().Take(address)) return env.Undefined();
  // Node work in the threadpool (crypto.randomFill, fs.read) may still write
  // through a pointer into the views just detached. Anonymous memory replaces
  // the segment, which detaches it as shmdt would, so such a write lands there;
  // the placeholder goes once GC collects the ArrayBuffer that work keeps alive.
  Napi::Object holder = info[1].IsObject() ? info[1].As<Napi::Object>() : arrayBuffer;
  if (::mmap(address, size, PROT_READ | PROT_WRITE,
             MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED) {
    if (::shmdt(address) == -1) throw ErrnoError(env, errno, "shmdt");
    return env.Undefined();
  }
  auto* placeholder = new Placeholder{address, size};
  if (napi_add_finalizer(env, holder, placeholder, UnmapPlaceholder, nullptr, nullptr) != napi_ok) {
    UnmapPlaceholder(env, placeholder, nullptr);
  }
  return env.Undefined();
}

Napi::Value ShmIsAttachment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) return Napi::Boolean::New(env, false);
  void* address = info[0].As<Napi::ArrayBuffer>().Data();
  return Napi::Boolean::New(env, address != nullptr && Attachments().Contains(address));
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

Napi::Value Shmctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int shmid = info[0].As<Napi::Number>().Int32Value();
  int cmd = info[1].As<Napi::Number>().Int32Value();

  switch (cmd) {
    case IPC_STAT:
    case SHM_STAT: {
      struct shmid_ds ds;
      int result = ::shmctl(shmid, cmd, &ds);
      if (result == -1) throw ErrnoError(env, errno, "shmctl");
      Napi::Object stat = ShmidDsToObject(env, ds);
      if (cmd == SHM_STAT) stat.Set("id", result);
      return stat;
    }
    case IPC_SET: {
      // IPC_SET writes uid, gid and mode together: keep what was not given.
      struct shmid_ds ds;
      if (::shmctl(shmid, IPC_STAT, &ds) == -1) {
        throw ErrnoError(env, errno, "shmctl");
      }
      ChangePermissions(info, 2, ds.shm_perm);
      if (::shmctl(shmid, IPC_SET, &ds) == -1) {
        throw ErrnoError(env, errno, "shmctl");
      }
      return env.Undefined();
    }
    case IPC_INFO: {
      struct shminfo limits;
      int highest = ::shmctl(0, IPC_INFO, reinterpret_cast<struct shmid_ds*>(&limits));
      if (highest == -1) throw ErrnoError(env, errno, "shmctl");
      Napi::Object result = Napi::Object::New(env);
      result.Set("shmmax", static_cast<double>(limits.shmmax));
      result.Set("shmmin", static_cast<double>(limits.shmmin));
      result.Set("shmmni", static_cast<double>(limits.shmmni));
      result.Set("shmseg", static_cast<double>(limits.shmseg));
      result.Set("shmall", static_cast<double>(limits.shmall));
      result.Set("highestIndex", highest);
      return result;
    }
    case SHM_INFO: {
      struct shm_info usage;
      int highest = ::shmctl(0, SHM_INFO, reinterpret_cast<struct shmid_ds*>(&usage));
      if (highest == -1) throw ErrnoError(env, errno, "shmctl");
      Napi::Object result = Napi::Object::New(env);
      result.Set("used_ids", usage.used_ids);
      result.Set("shm_tot", static_cast<double>(usage.shm_tot));
      result.Set("shm_rss", static_cast<double>(usage.shm_rss));
      result.Set("shm_swp", static_cast<double>(usage.shm_swp));
      result.Set("swap_attempts", static_cast<double>(usage.swap_attempts));
      result.Set("swap_successes", static_cast<double>(usage.swap_successes));
      result.Set("highestIndex", highest);
      return result;
    }
    default:  // IPC_RMID, SHM_LOCK, SHM_UNLOCK and anything the kernel rejects
      if (::shmctl(shmid, cmd, nullptr) == -1) {
        throw ErrnoError(env, errno, "shmctl");
      }
      return env.Undefined();
  }
}

}  // namespace kernel_ipc
