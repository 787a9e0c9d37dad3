#ifndef KERNEL_IPC_WAITER_H_
#define KERNEL_IPC_WAITER_H_

// Blocking calls: waiter threads for promises (waiter/pool.h), and what the
// synchronous mirrors share (waiter/blocking.h).
#include "waiter/blocking.h"
#include "waiter/pool.h"

#endif  // KERNEL_IPC_WAITER_H_
