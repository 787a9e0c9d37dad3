#include "shm/attachment.h"

#include <sys/mman.h>
#include <sys/shm.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "shm/map_count.h"

namespace kernel_ipc {
namespace {

// One writable mapping handed to JavaScript. Node work in the threadpool
// (crypto.randomFill, fs.read) writes through a raw pointer into the
// ArrayBuffer it was given, which it keeps alive; ArrayBuffer#transfer moves
// the memory to a new ArrayBuffer, detaching the old one, which such work may
// still hold, and postMessage can then move that to another thread. So the
// mapping lives until nothing that may reach it is left (its anchors): the
// memory behind the Buffer (which transfer moves, and which goes when the
// last ArrayBuffer holding it is collected, wherever that is), the ArrayBuffer
// JavaScript is handed (shmAnchor), and every ArrayBuffer shmdt was given for
// it. shmdt detaches the segment at once by putting anonymous memory in its
// place (a placeholder), which the last anchor unmaps. Anchors are released
// on whichever thread their finalizer runs.
struct Attachment {
  Attachment(void* address, size_t length, napi_env env) : address(address), length(length), env(env) {}

  void* address;
  size_t length;  // of the mapping: whole pages, huge ones for SHM_HUGETLB
  napi_env env;   // that made it: where the memory's finalizer runs
  std::atomic<int> anchors{1};  // the memory; shmAnchor and shmdt add theirs
  std::atomic<bool> detached{false};  // by shmdt, which listed it last
  std::mutex mutex;     // over segment
  bool segment = true;  // the segment is mapped there, rather than a placeholder
  // Left mapped, and listed, whatever its anchors say: its memory may live on
  // in a thread it cannot be followed to, which may still detach it.
  std::atomic<bool> kept{false};
  // Node finalizes inside a failing napi_create_external_buffer; the maker
  // then cleans up itself.
  bool created = false;
  // env's thread only:
  napi_ref owner = nullptr;  // weak: the ArrayBuffer JavaScript was handed, where it is movable
  bool stayed = false;       // found still holding the memory as env ended
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

  bool Contains(void* address) {
    std::lock_guard<std::mutex> lock(mutex_);
    return byAddress_.count(address) == 1;
  }

  // The attachment at `address`, with an anchor more, for its caller to add
  // (the attachment cannot go before it does); nullptr if none is listed.
  Attachment* Anchor(void* address) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = byAddress_.find(address);
    if (found == byAddress_.end()) return nullptr;
    ++found->second->anchors;
    return found->second;
  }

  // Unlists the attachment at `address`, with an anchor more, as Anchor.
  Attachment* Take(void* address) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = byAddress_.find(address);
    if (found == byAddress_.end()) return nullptr;
    Attachment* attachment = found->second;
    byAddress_.erase(found);
    ++attachment->anchors;
    return attachment;
  }

  // Calls `visit` with every listed attachment, under the lock.
  template <typename Visit>
  void ForEach(Visit visit) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& entry : byAddress_) visit(entry.second);
  }

  // Unlists `attachment` if it is still listed.
  void Remove(Attachment* attachment) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = byAddress_.find(attachment->address);
    if (found != byAddress_.end() && found->second == attachment) byAddress_.erase(found);
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
  if (attachment->anchors.fetch_sub(1) > 1 || attachment->kept) return;
  if (attachment->segment) {
    ::shmdt(attachment->address);
    GiveMapping();
  } else {
    ::munmap(attachment->address, attachment->length);
  }
  delete attachment;
}

// Anything that may still write into the mapping then writes into anonymous
// memory, and the segment is detached as shmdt would (nattch, dtime, lpid).
// Where the kernel refuses that mapping (vm.max_map_count reached, strict
// overcommit), the segment stays until the last anchor goes. A placeholder
// is not counted against the map budget: the kernel merges it with its
// neighbours, as detaches in a row make them, and GC soon unmaps it.
void ReplaceWithPlaceholder(Attachment* attachment) {
  std::lock_guard<std::mutex> lock(attachment->mutex);
  if (!attachment->segment) return;
  void* placeholder = ::mmap(attachment->address, attachment->length, PROT_READ | PROT_WRITE,
                             MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (placeholder == MAP_FAILED) return;
  attachment->segment = false;
  GiveMapping();
}

enum class Whereabouts { kHere, kMoved, kUnknown };

// Where the memory is, by the ArrayBuffer JavaScript was handed: if that no
// longer holds it, ArrayBuffer#transfer has moved it, maybe to another
// thread. Unknown once that ArrayBuffer is collected, or out of reach (Node 24
// clears weak references before it finalizes an ending environment's memory).
Whereabouts WhereaboutsOf(Attachment* attachment) {
  if (attachment->owner == nullptr) return Whereabouts::kHere;  // nothing could move it
  napi_handle_scope scope;
  if (napi_open_handle_scope(attachment->env, &scope) != napi_ok) return Whereabouts::kUnknown;
  napi_value owner;
  void* data = nullptr;
  Whereabouts where = Whereabouts::kUnknown;
  if (napi_get_reference_value(attachment->env, attachment->owner, &owner) == napi_ok && owner != nullptr &&
      napi_get_arraybuffer_info(attachment->env, owner, &data, nullptr) == napi_ok) {
    where = data == attachment->address ? Whereabouts::kHere : Whereabouts::kMoved;
  }
  napi_close_handle_scope(attachment->env, scope);
  return where;
}

// Memory that may live on in a thread it cannot be followed to stays mapped
// for as long as the process lives: as the segment, and listed, where it is
// known to have moved (that thread may still use and detach it); as anonymous
// memory where that is unknown.
void Keep(Attachment* attachment, Whereabouts where) {
  attachment->kept = true;
  if (where == Whereabouts::kMoved) return;
  Attachments().Remove(attachment);
  ReplaceWithPlaceholder(attachment);
}

// Whether JavaScript can still run in `env`: not once it is ending.
bool CanRunJavaScript(napi_env env) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return false;
  napi_value object, property;
  // A property read is refused, as any call that could run JavaScript, once the environment ends.
  bool can = napi_create_object(env, &object) == napi_ok && napi_get_named_property(env, object, "x", &property) == napi_ok;
  napi_close_handle_scope(env, scope);
  return can;
}

// Node runs this when no ArrayBuffer holds the memory any more, and also, whatever holds it,
// when the environment that made it ends (JavaScript can no longer run then). The memory may
// then live on in another thread, moved there with ArrayBuffer#transfer and postMessage: it is
// kept (see Keep) unless it is known to be here. Runs on that environment's thread.
void FinalizeMemory(napi_env env, void*, void* hint) {
  auto* attachment = static_cast<Attachment*>(hint);
  if (!attachment->created) return;
  if (!attachment->kept) {
    Whereabouts where = attachment->detached || attachment->stayed || CanRunJavaScript(env)
                            ? Whereabouts::kHere
                            : WhereaboutsOf(attachment);
    if (where == Whereabouts::kHere) {
      Attachments().Remove(attachment);
    } else {
      Keep(attachment, where);
    }
  }
  if (attachment->owner != nullptr) napi_delete_reference(env, attachment->owner);
  attachment->owner = nullptr;
  ReleaseAnchor(attachment);
}

// An ArrayBuffer anchoring the mapping was collected.
void FinalizeAnchor(napi_env, void* data, void*) { ReleaseAnchor(static_cast<Attachment*>(data)); }

// Makes `arrayBuffer` hold the anchor its caller took. Should that fail (out
// of memory), the anchor is never released: the mapping is kept rather than
// ever unmapped too soon.
void HandAnchor(napi_env env, napi_value arrayBuffer, Attachment* attachment) {
  napi_add_finalizer(env, arrayBuffer, attachment, FinalizeAnchor, nullptr, nullptr);
}

}  // namespace

Napi::Value MakeAttachmentBuffer(Napi::Env env, void* address, size_t size, size_t length) {
  auto* attachment = new Attachment(address, length, env);
  Attachments().Add(attachment);
  napi_value buffer;
  napi_status status = napi_create_external_buffer(env, size, address, FinalizeMemory, attachment, &buffer);
  if (status != napi_ok) {
    Attachments().Remove(attachment);
    ::shmdt(address);
    GiveMapping();
    delete attachment;
    NAPI_THROW_IF_FAILED(env, status, Napi::Value());
  }
  attachment->created = true;
  return Napi::Value(env, buffer);
}

void ShmAnchor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto arrayBuffer = info[0].As<Napi::ArrayBuffer>();
  bool movable = info[1].As<Napi::Boolean>().Value();
  Attachment* attachment = Attachments().Anchor(arrayBuffer.Data());
  if (attachment == nullptr) throw Napi::TypeError::New(env, "shmAnchor: not an attachment");
  HandAnchor(env, arrayBuffer, attachment);
  // Node's own ArrayBuffer, which it detaches itself as the environment ends,
  // can only be watched where nothing could move the memory out of it anyway.
  if (movable && attachment->env == static_cast<napi_env>(env) && attachment->owner == nullptr) {
    napi_create_reference(env, arrayBuffer, 0, &attachment->owner);
  }
}

void ShmEnding(const Napi::CallbackInfo& info) {
  auto env = static_cast<napi_env>(info.Env());
  Attachments().ForEach([env](Attachment* attachment) {
    if (attachment->env != env || attachment->kept) return;
    Whereabouts where = WhereaboutsOf(attachment);
    if (where == Whereabouts::kMoved) {
      attachment->kept = true;
    } else {
      attachment->stayed = where == Whereabouts::kHere;
    }
  });
}

bool IsAttachment(Napi::ArrayBuffer arrayBuffer) {
  void* address = arrayBuffer.Data();
  return address != nullptr && Attachments().Contains(address);
}

void* HoldAttachment(Napi::ArrayBuffer arrayBuffer) {
  void* address = arrayBuffer.Data();
  return address == nullptr ? nullptr : Attachments().Anchor(address);
}

void ReleaseAttachment(void* hold) { ReleaseAnchor(static_cast<Attachment*>(hold)); }

bool DetachAttachment(Napi::Env env, Napi::ArrayBuffer arrayBuffer, Napi::Object holder) {
  void* address = arrayBuffer.Data();
  Attachment* attachment = address == nullptr ? nullptr : Attachments().Take(address);
  if (attachment == nullptr) return false;
  // Detached, it is dead wherever it went: only anchors hold it again.
  attachment->detached = true;
  attachment->kept = false;
  ReplaceWithPlaceholder(attachment);
  // Every view goes, so no JavaScript can reach the memory; the memory's
  // finalizer follows, on the thread of the environment that made it.
  arrayBuffer.Detach();
  HandAnchor(env, holder, attachment);
  return true;
}

}  // namespace kernel_ipc
