#ifndef KERNEL_IPC_SHM_PAGES_H_
#define KERNEL_IPC_SHM_PAGES_H_

#include <stddef.h>

namespace kernel_ipc {

// The system's page size.
size_t BasePageSize();

// The page size of the mapping that starts at `address`: the system's, or a
// huge page size for a SHM_HUGETLB segment, whose mapping is its size rounded
// up to whole huge pages; 0 if it may be huge pages of a size that cannot be
// learnt (no /proc).
size_t PageSizeOf(void* address);

// Faults in every page of the mapping, so that none is missing later: a huge
// page that cannot be had when first touched raises SIGBUS instead. Returns 0
// or an errno: ENOMEM when a page cannot be had, EINVAL on kernels before 5.14.
int Populate(void* address, size_t length, bool writable);

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_SHM_PAGES_H_
