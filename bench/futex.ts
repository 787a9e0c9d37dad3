// futex wait/notify: a ping-pong between two processes on two words of one segment (A bumps
// word 0 and wakes it, B answers on word 1), beside the same in C.
import { execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { futex, IPC_CREAT, IPC_PRIVATE, IPC_RMID, shmat, shmctl, shmdt, shmget } from '../lib';
import { compileC, haveCompiler } from '../tools/compile-c';
import { measure, measureAsync, median, row, RUNS } from './measure';

const ROUNDS = 20_000;

// Usage: <rounds> <runs>; prints nanoseconds per round trip of each run after a warm-up run.
const futexInC = `
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static void wait_while(_Atomic int32_t *word, int32_t seen) { syscall(SYS_futex, word, FUTEX_WAIT, seen, NULL, NULL, 0); }
static void wake(_Atomic int32_t *word) { syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0); }

int main(int argc, char **argv) {
  int count = atoi(argv[1]), runs = atoi(argv[2]);
  _Atomic int32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  pid_t pid = fork();
  if (pid == 0) {
    for (int32_t round = 1; !atomic_load(&w[2]); round++) {
      for (int32_t seen = atomic_load(&w[0]); seen < round && !atomic_load(&w[2]); seen = atomic_load(&w[0])) wait_while(&w[0], seen);
      atomic_store(&w[1], round);
      wake(&w[1]);
    }
    _exit(0);
  }
  int32_t round = 0;
  for (int run = 0; run <= runs; run++) {
    double started = now();
    for (int i = 0; i < count; i++) {
      atomic_store(&w[0], ++round);
      wake(&w[0]);
      for (int32_t seen = atomic_load(&w[1]); seen < round; seen = atomic_load(&w[1])) wait_while(&w[1], seen);
    }
    if (run > 0) printf("%f\\n", (now() - started) / count);
  }
  atomic_store(&w[2], 1);
  atomic_store(&w[0], ++round);
  wake(&w[0]);
  waitpid(pid, NULL, 0);
  return 0;
}
`;

function inC(): number | undefined {
  if (!haveCompiler()) return undefined;
  const output = execFileSync(compileC(futexInC), [String(ROUNDS), String(RUNS)], { encoding: 'utf8' });
  return median(output.trim().split('\n').map(Number));
}

/** Three words of a new segment, answered by a Node process (bench/futex-echo.ts). */
async function withEcho(run: (words: Int32Array) => Promise<number> | number): Promise<number> {
  const id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600);
  const buffer = shmat(id);
  shmctl(id, IPC_RMID);
  const words = new Int32Array(buffer.buffer, buffer.byteOffset, 3);
  const child = fork(join(__dirname, 'futex-echo.js'), [String(id)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(child, 'exit');
  try {
    return await run(words);
  } finally {
    Atomics.store(words, 2, 1);
    Atomics.add(words, 0, 1);
    futex.notify(words, 0);
    await exited;
    shmdt(buffer);
  }
}

export async function futexes(): Promise<void> {
  console.log(`\nfutex: ping-pong between two processes on one segment (median of ${RUNS} runs of ${ROUNDS})`);
  const c = inC();
  let round = 0;
  const sync = await withEcho((words) => measure(ROUNDS, () => {
    for (let i = 0; i < ROUNDS; i++) {
      Atomics.store(words, 0, ++round);
      futex.notify(words, 0);
      for (let seen = Atomics.load(words, 1); seen < round; seen = Atomics.load(words, 1)) futex.wait(words, 1, seen);
    }
  }));
  round = 0;
  const promise = await withEcho((words) => measureAsync(ROUNDS / 10, async () => {
    for (let i = 0; i < ROUNDS / 10; i++) {
      Atomics.store(words, 0, ++round);
      futex.notify(words, 0);
      for (let seen = Atomics.load(words, 1); seen < round; seen = Atomics.load(words, 1)) await futex.waitAsync(words, 1, seen);
    }
  }));
  if (c === undefined) console.log('  C (no compiler found)');
  else row('C futex wait + wake', c, 'op');
  row('futex.wait + notify', sync, 'op', c === undefined ? '' : `${(sync / c).toFixed(2)}x C (target <= 1.25x)`);
  row('futex.waitAsync + notify', promise, 'op');
}
