#ifndef KERNEL_IPC_SHM_MAP_COUNT_H_
#define KERNEL_IPC_SHM_MAP_COUNT_H_

namespace kernel_ipc {

// The segments kernel-ipc holds mapped (attachments), against the process's
// vm.max_map_count. A process at that limit
// cannot map anything, and V8 then dies of it: so a share is left to the
// rest of the process. TakeMapping returns false when kernel-ipc holds its
// share; each one taken is given back once the segment is no longer mapped.
bool TakeMapping();
void GiveMapping();
// The most mappings kernel-ipc holds, for the error that says so.
long MappingLimit();

}  // namespace kernel_ipc

#endif  // KERNEL_IPC_SHM_MAP_COUNT_H_
