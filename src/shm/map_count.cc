#include "shm/map_count.h"

#include <stdio.h>

#include <atomic>

namespace kernel_ipc {
namespace {

std::atomic<long> held{0};

// vm.max_map_count (Linux's default if it cannot be read), less an eighth
// for everything else the process maps (its heap, libraries, thread stacks).
long ReadLimit() {
  long limit = 65530;
  if (FILE* setting = fopen("/proc/sys/vm/max_map_count", "re")) {
    if (fscanf(setting, "%ld", &limit) != 1) limit = 65530;
    fclose(setting);
  }
  return limit - limit / 8;
}

}  // namespace

long MappingLimit() {
  static const long limit = ReadLimit();
  return limit;
}

bool TakeMapping() {
  if (held.fetch_add(1) < MappingLimit()) return true;
  held.fetch_sub(1);
  return false;
}

void GiveMapping() { held.fetch_sub(1); }

}  // namespace kernel_ipc
