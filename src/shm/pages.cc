#include "shm/pages.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>

namespace kernel_ipc {
namespace {

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

// Linux 6.11's PROCMAP_QUERY (linux/fs.h), declared here for older headers.
struct ProcmapQuery {
  uint64_t size;
  uint64_t query_flags;
  uint64_t query_addr;
  uint64_t vma_start;
  uint64_t vma_end;
  uint64_t vma_flags;
  uint64_t vma_page_size;
  uint64_t vma_offset;
  uint64_t inode;
  uint32_t dev_major;
  uint32_t dev_minor;
  uint32_t vma_name_size;
  uint32_t build_id_size;
  uint64_t vma_name_addr;
  uint64_t build_id_addr;
};
constexpr unsigned long kProcmapQuery = _IOWR('f', 17, ProcmapQuery);

// Every huge page mapping starts on a multiple of the smallest huge page size
// the kernel supports (its /sys/kernel/mm/hugepages/hugepages-<kB>kB): an
// address that is not one is the common case, answered without a system call.
// SIZE_MAX for a kernel without huge pages; unknown (no /sys), the system's
// page size, so that every address is looked at.
size_t HugeAlignment() {
  static const size_t alignment = [] {
    DIR* dir = opendir("/sys/kernel/mm/hugepages");
    if (dir == nullptr) return access("/sys/kernel/mm", F_OK) == 0 ? SIZE_MAX : BasePageSize();
    size_t smallest = SIZE_MAX;
    while (struct dirent* entry = readdir(dir)) {
      unsigned long kilobytes;
      if (sscanf(entry->d_name, "hugepages-%lukB", &kilobytes) == 1 && kilobytes * 1024 < smallest) {
        smallest = kilobytes * 1024;
      }
    }
    closedir(dir);
    return smallest;
  }();
  return alignment;
}

// From /proc/self/smaps, where PROCMAP_QUERY is missing (Linux before 6.11):
// read up to the mapping's KernelPageSize; 0 if it is not found.
size_t PageSizeFromSmaps(uintptr_t address) {
  std::unique_ptr<FILE, int (*)(FILE*)> smaps(fopen("/proc/self/smaps", "re"), fclose);
  if (!smaps) return 0;
  char line[512];
  bool inside = false;
  while (fgets(line, sizeof line, smaps.get()) != nullptr) {
    unsigned long start, end, kilobytes;
    if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
      if (inside) return 0;
      inside = start <= address && address < end;
    } else if (inside && sscanf(line, "KernelPageSize: %lu kB", &kilobytes) == 1) {
      return kilobytes * 1024;
    }
  }
  return 0;
}

}  // namespace

size_t BasePageSize() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

size_t PageSizeOf(void* address) {
  auto at = reinterpret_cast<uintptr_t>(address);
  size_t alignment = HugeAlignment();
  if (alignment == SIZE_MAX || at % alignment != 0) return BasePageSize();
  size_t size = 0;
  int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (maps != -1) {
    ProcmapQuery query = {};
    query.size = sizeof query;
    query.query_addr = at;
    if (ioctl(maps, kProcmapQuery, &query) == 0) size = query.vma_page_size;
    close(maps);
  }
  // PROCMAP_QUERY is missing (Linux before 6.11) or refused (seccomp, an LSM).
  if (size == 0) size = PageSizeFromSmaps(at);
  if (size != 0) return size;
  // No /proc: MADV_COLD, which changes nothing here, is refused for huge pages
  // (and locked memory, and by kernels before 5.4), and allowed for the rest.
  return madvise(address, BasePageSize(), MADV_COLD) == 0 ? BasePageSize() : 0;
}

int Populate(void* address, size_t length, bool writable) {
  int result;
  do {
    result = madvise(address, length, writable ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
  } while (result == -1 && errno == EINTR);
  if (result == 0) return 0;
  // EFAULT: a page could not be had (it would have been SIGBUS); EHWPOISON.
  return errno == EINVAL ? EINVAL : ENOMEM;
}

}  // namespace kernel_ipc
