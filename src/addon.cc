// Registers the addon's exports; each concept lives in its own file.
#include <napi.h>

#include "env_data.h"
#include "errors.h"
#include "fifo.h"
#include "futex.h"
#include "ipc.h"
#include "msg.h"
#include "sem.h"
#include "shm.h"
#include "shm/attachment.h"
#include "shm/read_only.h"
#include "signals.h"
#include "waiter.h"

namespace kernel_ipc {
namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new EnvData());
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass));
  exports.Set("ftok", Napi::Function::New(env, Ftok));
  exports.Set("shmget", Napi::Function::New(env, Shmget));
  exports.Set("shmat", Napi::Function::New(env, Shmat));
  exports.Set("shmdt", Napi::Function::New(env, Shmdt));
  exports.Set("shmctl", Napi::Function::New(env, Shmctl));
  exports.Set("shmAnchor", Napi::Function::New(env, ShmAnchor));
  exports.Set("shmEnding", Napi::Function::New(env, ShmEnding));
  exports.Set("shmIsAttachment", Napi::Function::New(env, ShmIsAttachment));
  exports.Set("shmReadOnlySize", Napi::Function::New(env, ShmReadOnlySize));
  exports.Set("shmReadOnlyCopy", Napi::Function::New(env, ShmReadOnlyCopy));
  exports.Set("msgget", Napi::Function::New(env, Msgget));
  exports.Set("msgsnd", Napi::Function::New(env, Msgsnd));
  exports.Set("msgrcv", Napi::Function::New(env, Msgrcv));
  exports.Set("msgctl", Napi::Function::New(env, Msgctl));
  exports.Set("msgsndAsync", Napi::Function::New(env, MsgsndAsync));
  exports.Set("msgrcvAsync", Napi::Function::New(env, MsgrcvAsync));
  exports.Set("semget", Napi::Function::New(env, Semget));
  exports.Set("semopBuffer", Napi::Function::New(env, SemopBuffer));
  exports.Set("semop", Napi::Function::New(env, Semop));
  exports.Set("semopAsync", Napi::Function::New(env, SemopAsync));
  exports.Set("semctl", Napi::Function::New(env, Semctl));
  exports.Set("futexWait", Napi::Function::New(env, FutexWait));
  exports.Set("futexWaitAsync", Napi::Function::New(env, FutexWaitAsync));
  exports.Set("futexWake", Napi::Function::New(env, FutexWake));
  exports.Set("schedYield", Napi::Function::New(env, SchedYield));
  exports.Set("mkfifo", Napi::Function::New(env, Mkfifo));
  exports.Set("fifoOpen", Napi::Function::New(env, FifoOpen));
  exports.Set("fifoOpenWriterAsync", Napi::Function::New(env, FifoOpenWriterAsync));
  exports.Set("signalsInit", Napi::Function::New(env, SignalsInit));
  exports.Set("sigprocmask", Napi::Function::New(env, Sigprocmask));
  exports.Set("sigpending", Napi::Function::New(env, Sigpending));
  exports.Set("sigqueue", Napi::Function::New(env, Sigqueue));
  exports.Set("sigwaitinfoAsync", Napi::Function::New(env, SigwaitinfoAsync));
  exports.Set("waiterInit", Napi::Function::New(env, WaiterInit));
  exports.Set("waiterCancel", Napi::Function::New(env, WaiterCancel));
  exports.Set("waiterStop", Napi::Function::New(env, WaiterStop));
  exports.Set("interruptBlocking", Napi::Function::New(env, InterruptBlocking));
  return exports;
}

}  // namespace

NODE_API_MODULE(kernel_ipc, Init)

}  // namespace kernel_ipc
