#include "shm.h"

#include <errno.h>
#include <sys/shm.h>

#include <string>

#include "errors.h"
#include "ipc.h"
#include "shm/attachment.h"
#include "shm/map_count.h"
#include "shm/pages.h"
#include "shm/read_only.h"

namespace kernel_ipc {
namespace {

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

// A fresh attachment, detached again (and its map count given back) unless it
// is handed on to what owns it from then on.
class Unhanded {
 public:
  explicit Unhanded(void* address) : address_(address) {}
  Unhanded(const Unhanded&) = delete;
  Unhanded& operator=(const Unhanded&) = delete;
  ~Unhanded() {
    if (address_ == nullptr) return;
    ::shmdt(address_);
    GiveMapping();
  }

  void* Hand() {
    void* address = address_;
    address_ = nullptr;
    return address;
  }

 private:
  void* address_;
};

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

  if (!TakeMapping()) {
    throw DescribedErrnoError(env, ENOMEM, "shmat",
                              "kernel-ipc already holds " + std::to_string(MappingLimit()) +
                                  " attachments, the most it makes: the rest of vm.max_map_count is left to the"
                                  " rest of the process");
  }
  void* address = ::shmat(shmid, nullptr, flags);
  if (address == reinterpret_cast<void*>(-1)) {
    int errnum = errno;
    GiveMapping();
    throw ErrnoError(env, errnum, "shmat");
  }
  Unhanded attachment(address);
  // Stat after attaching: the attachment pins the segment behind this id.
  struct shmid_ds ds;
  if (::shmctl(shmid, IPC_STAT, &ds) == -1) throw ErrnoError(env, errno, "shmctl");
  bool readOnly = flags & SHM_RDONLY;
  std::string segment = "segment " + std::to_string(shmid);
  size_t pageSize = PageSizeOf(address);
  if (pageSize == 0) {
    throw DescribedErrnoError(env, EINVAL, "shmat",
                              segment + " may use huge pages, and without /proc kernel-ipc cannot tell their size");
  }
  size_t length = (ds.shm_segsz + pageSize - 1) / pageSize * pageSize;
  // Huge pages are taken at first touch, and one that cannot be had then (a
  // SHM_HUGETLB | SHM_NORESERVE segment, none free) is SIGBUS: so every page
  // is had now, or the segment is not attached.
  if (int errnum = pageSize == BasePageSize() ? 0 : Populate(address, length, !readOnly)) {
    throw DescribedErrnoError(
        env, errnum, "shmat",
        errnum == EINVAL ? segment + " uses huge pages, which kernel-ipc attaches only where it can fault them all"
                                     " in first (MADV_POPULATE, Linux 5.14)"
                         : segment + " uses huge pages (SHM_HUGETLB) and not all of them can be had: touching a"
                                     " missing one would kill the process with SIGBUS");
  }
  if (readOnly) return MakeReadOnlyMapping(env, attachment.Hand(), ds.shm_segsz);
  if (static_cast<double>(ds.shm_segsz) > maxLength) {
    Napi::Error error = Napi::RangeError::New(
        env, "Cannot create a Buffer larger than " +
                 std::to_string(static_cast<size_t>(maxLength)) +
                 " bytes: " + segment + " has " + std::to_string(ds.shm_segsz) + " bytes");
    error.Set("code", "ERR_BUFFER_TOO_LARGE");
    throw error;
  }
  return MakeAttachmentBuffer(env, attachment.Hand(), ds.shm_segsz, length);
}

Napi::Value Shmdt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (DetachReadOnlyMapping(env, info[0])) return env.Undefined();
  if (!info[0].IsArrayBuffer()) {
    throw Napi::TypeError::New(env, "shmdt: expected an ArrayBuffer");
  }
  Napi::ArrayBuffer arrayBuffer = info[0].As<Napi::ArrayBuffer>();
  Napi::Object holder = info[1].IsObject() ? info[1].As<Napi::Object>() : arrayBuffer;
  // Like C's shmdt: anything that is not a live attachment is EINVAL.
  if (!DetachAttachment(env, arrayBuffer, holder)) throw ErrnoError(env, EINVAL, "shmdt");
  return env.Undefined();
}

Napi::Value ShmIsAttachment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Boolean::New(env, info[0].IsArrayBuffer() && IsAttachment(info[0].As<Napi::ArrayBuffer>()));
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
