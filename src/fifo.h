#ifndef KERNEL_IPC_FIFO_H_
#define KERNEL_IPC_FIFO_H_

#include <napi.h>

namespace kernel_ipc {

// mkfifo(path, mode)
Napi::Value Mkfifo(const Napi::CallbackInfo& info);
// fifoOpen(path, forWriting): a non-blocking, close-on-exec descriptor; for
// writing it fails with ENXIO while the FIFO has no reader
Napi::Value FifoOpen(const Napi::CallbackInfo& info);
// fifoOpenWriterAsync(path, ref): { fd } if the FIFO has a reader, else the
// id of a waiter call that resolves with { fd } once one opens it
Napi::Value FifoOpenWriterAsync(const Napi::CallbackInfo& info);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_FIFO_H_
