#ifndef KERNEL_IPC_SHM_ATTACHMENT_H_
#define KERNEL_IPC_SHM_ATTACHMENT_H_

#include <napi.h>
#include <stddef.h>

namespace kernel_ipc {

// A writable attachment as an external Buffer over the whole segment: `size`
// bytes at `address`, a mapping of `length` bytes (whole pages). It owns the
// mapping (and the map count taken for it) from here on, also when this throws.
Napi::Value MakeAttachmentBuffer(Napi::Env env, void* address, size_t size, size_t length);

// shmAnchor(arrayBuffer, movable): the ArrayBuffer JavaScript is handed for a
// new attachment. It keeps the mapping while it lives; `movable`, where
// ArrayBuffer#transfer exists (and it is not Node's own), whether it still
// holds the memory when the environment ends tells whether the memory moved.
void ShmAnchor(const Napi::CallbackInfo& info);

// shmEnding(): this environment is ending ('exit'), while JavaScript can still
// tell where its attachments' memory is: what moved away is kept mapped.
void ShmEnding(const Napi::CallbackInfo& info);

// Whether `arrayBuffer` holds a live writable attachment (one made here and
// neither detached nor collected).
bool IsAttachment(Napi::ArrayBuffer arrayBuffer);

// Keeps the mapping of the attachment `arrayBuffer` holds (the segment, or
// after shmdt the anonymous memory in its place) until ReleaseAttachment,
// which any thread may call: for a thread that uses the memory while
// JavaScript may drop, move or detach it. nullptr if it holds no live
// attachment.
void* HoldAttachment(Napi::ArrayBuffer arrayBuffer);
void ReleaseAttachment(void* hold);

// Detaches the attachment `arrayBuffer` holds, and every view over it; false
// if it holds none. `holder` is an ArrayBuffer that pending Node work may
// still write through (the one the caller was given): the memory stays
// mapped, as anonymous memory, until it is collected.
bool DetachAttachment(Napi::Env env, Napi::ArrayBuffer arrayBuffer, Napi::Object holder);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_SHM_ATTACHMENT_H_
