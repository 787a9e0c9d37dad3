#include "shm/attachment.h"

#include <sys/mman.h>
#include <sys/shm.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

namespace kernel_ipc {
namespace {

// One writable mapping handed to JavaScript. Node work in the threadpool
// (crypto.randomFill, fs.read) writes through a raw pointer into the
// ArrayBuffer it was given, which it keeps alive, and ArrayBuffer#transfer
// moves the memory to a new ArrayBuffer, detaching the old one, which such
// work may still hold. So the mapping lives until nothing that may reach it
// is left (its anchors): the memory behind the Buffer (which transfer moves,
// and which goes when the last ArrayBuffer holding it is collected), the
// ArrayBuffer made here, and every ArrayBuffer shmdt was given for it. shmdt
// detaches the segment at once by putting anonymous memory in its place (a
// placeholder), which the last anchor unmaps.
struct Attachment {
  void* address;
  size_t length;  // of the mapping: whole pages, huge ones for SHM_HUGETLB
  std::atomic<int> anchors{2};
  // Whether the segment is mapped there, rather than a placeholder.
  bool segment = true;
  // Node finalizes inside a failing napi_create_external_buffer; the maker
  // then cleans up itself.
  bool created = false;
};

// The live attachments (made, and neither detached by shmdt nor collected),
// by address. Addresses are process-wide, so one registry serves every
// thread; the mapping stays at its address until its last anchor goes, so a
// new attachment never reuses the address of one still listed.
class Registry {
 public:
  void Add(Attachment* attachment) {
    std::lock_guard<std::mutex> lock(mutex_);
    byAddress_[attachment->address] = attachment;
  }

  Attachment* Find(void* address) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = byAddress_.find(address);
    return found == byAddress_.end() ? nullptr : found->second;
  }

  // Unlists `attachment` if it is still listed; false if it was not.
  bool Remove(Attachment* attachment) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = byAddress_.find(attachment->address);
    if (found == byAddress_.end() || found->second != attachment) return false;
    byAddress_.erase(found);
    return true;
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

void ReleaseAnchor(Attachment* attachment) {
  if (--attachment->anchors > 0) return;
  if (attachment->segment) {
    ::shmdt(attachment->address);
  } else {
    ::munmap(attachment->address, attachment->length);
  }
  delete attachment;
}

// Anything that may still write into the mapping then writes into anonymous
// memory, and the segment is detached as shmdt would (nattch, dtime, lpid).
// Where the kernel refuses that mapping (vm.max_map_count reached, strict
// overcommit), the segment stays until the last anchor goes.
void ReplaceWithPlaceholder(Attachment* attachment) {
  if (!attachment->segment) return;
  void* placeholder = ::mmap(attachment->address, attachment->length, PROT_READ | PROT_WRITE,
                             MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (placeholder != MAP_FAILED) attachment->segment = false;
}

// The memory behind the Buffer is gone: no ArrayBuffer holds it any more.
void FinalizeMemory(napi_env, void*, void* hint) {
  auto* attachment = static_cast<Attachment*>(hint);
  if (!attachment->created) return;
  Attachments().Remove(attachment);
  ReleaseAnchor(attachment);
}

// An ArrayBuffer anchoring the mapping was collected.
void FinalizeAnchor(napi_env, void* data, void*) { ReleaseAnchor(static_cast<Attachment*>(data)); }

// Makes `arrayBuffer` an anchor. Should that fail (out of memory), the anchor
// is never released: the mapping is kept rather than ever unmapped too soon.
void Anchor(napi_env env, napi_value arrayBuffer, Attachment* attachment) {
  ++attachment->anchors;
  napi_add_finalizer(env, arrayBuffer, attachment, FinalizeAnchor, nullptr, nullptr);
}

}  // namespace

Napi::Value MakeAttachmentBuffer(Napi::Env env, void* address, size_t size, size_t length) {
  auto* attachment = new Attachment{address, length};
  Attachments().Add(attachment);
  napi_value buffer;
  napi_status status = napi_create_external_buffer(env, size, address, FinalizeMemory, attachment, &buffer);
  if (status != napi_ok) {
    Attachments().Remove(attachment);
    ::shmdt(address);
    delete attachment;
    NAPI_THROW_IF_FAILED(env, status, Napi::Value());
  }
  attachment->created = true;
  // The ArrayBuffer made here is the second anchor the count starts with;
  // without its finalizer (out of memory) the mapping is kept for good.
  napi_value arrayBuffer;
  if (napi_get_typedarray_info(env, buffer, nullptr, nullptr, nullptr, &arrayBuffer, nullptr) == napi_ok) {
    napi_add_finalizer(env, arrayBuffer, attachment, FinalizeAnchor, nullptr, nullptr);
  }
  return Napi::Value(env, buffer);
}

bool IsAttachment(Napi::ArrayBuffer arrayBuffer) {
  void* address = arrayBuffer.Data();
  return address != nullptr && Attachments().Find(address) != nullptr;
}

bool DetachAttachment(Napi::Env env, Napi::ArrayBuffer arrayBuffer, Napi::Object holder) {
  void* address = arrayBuffer.Data();
  Attachment* attachment = address == nullptr ? nullptr : Attachments().Find(address);
  if (attachment == nullptr || !Attachments().Remove(attachment)) return false;
  // Every view goes before the memory does, so no JavaScript can reach it.
  arrayBuffer.Detach();
  Anchor(env, holder, attachment);
  ReplaceWithPlaceholder(attachment);
  return true;
}

}  // namespace kernel_ipc
