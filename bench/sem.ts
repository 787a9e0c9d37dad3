// Semaphores: a ping-pong between two processes over two semaphores, and an uncontended
// acquire/release pair, beside the same in C.
import { execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { IPC_PRIVATE, IPC_RMID, SemaphoreSet, semctl, semget, semop } from '../lib';
import * as promises from '../lib/promises';
import { compileC, haveCompiler } from '../tools/compile-c';
import { measure, measureAsync, median, row, RUNS } from './measure';

const ROUNDS = 5000;
const PAIRS = 200_000;

// Usage: <pingpong|uncontended> <operations> <runs>; prints nanoseconds per round trip or
// per acquire/release pair of each run after a warm-up run.
const semaphoresInC = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static void op(int id, unsigned short num, short delta) {
  struct sembuf b = { num, delta, 0 };
  if (semop(id, &b, 1) == -1) _exit(1);
}

int main(int argc, char **argv) {
  int pingpong = strcmp(argv[1], "pingpong") == 0;
  int count = atoi(argv[2]), runs = atoi(argv[3]);
  int id = semget(IPC_PRIVATE, 2, 0600);
  if (id < 0) return 1;
  pid_t pid = -1;
  if (pingpong && (pid = fork()) == 0) {
    struct sembuf take = { 0, -1, 0 }, give = { 1, 1, 0 };
    while (semop(id, &take, 1) == 0 && semop(id, &give, 1) == 0) {}
    _exit(0);
  }
  if (!pingpong) op(id, 0, 1);
  for (int run = 0; run <= runs; run++) {
    double started = now();
    for (int i = 0; i < count; i++) {
      if (pingpong) {
        op(id, 0, 1);
        op(id, 1, -1);
      } else {
        op(id, 0, -1);
        op(id, 0, 1);
      }
    }
    if (run > 0) printf("%f\\n", (now() - started) / count);
  }
  semctl(id, 0, IPC_RMID);
  if (pid > 0) waitpid(pid, NULL, 0);
  return 0;
}
`;

function inC(mode: 'pingpong' | 'uncontended', count: number): number | undefined {
  if (!haveCompiler()) return undefined;
  const output = execFileSync(compileC(semaphoresInC), [mode, String(count), String(RUNS)], { encoding: 'utf8' });
  return median(output.trim().split('\n').map(Number));
}

/** A two-semaphore set answered by a Node process (bench/sem-echo.ts). */
async function withEcho(run: (semid: number) => Promise<number> | number): Promise<number> {
  const semid = semget(IPC_PRIVATE, 2, 0o600);
  const child = fork(join(__dirname, 'sem-echo.js'), [String(semid)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(child, 'exit');
  try {
    return await run(semid);
  } finally {
    semctl(semid, 0, IPC_RMID);
    await exited;
  }
}

function compared(nanos: number, c: number | undefined, target: number): string {
  return c === undefined ? '' : `${(nanos / c).toFixed(2)}x C (target <= ${target}x)`;
}

export async function semaphores(): Promise<void> {
  console.log(`\nsemaphores (median of ${RUNS} runs)`);
  const give = [{ num: 0, op: 1 }];
  const take = [{ num: 1, op: -1 }];
  const cPingPong = inC('pingpong', ROUNDS);
  const sync = await withEcho((semid) => measure(ROUNDS, () => {
    for (let i = 0; i < ROUNDS; i++) {
      semop(semid, give);
      semop(semid, take);
    }
  }));
  const promise = await withEcho((semid) => measureAsync(ROUNDS, async () => {
    for (let i = 0; i < ROUNDS; i++) {
      await promises.semop(semid, give);
      await promises.semop(semid, take);
    }
  }));

  const cPair = inC('uncontended', PAIRS);
  const semid = semget(IPC_PRIVATE, 1, 0o600);
  let pair: number;
  let promisePair: number;
  try {
    const up = [{ num: 0, op: 1 }];
    const down = [{ num: 0, op: -1 }];
    semop(semid, up);
    pair = measure(PAIRS, () => {
      for (let i = 0; i < PAIRS; i++) {
        semop(semid, down);
        semop(semid, up);
      }
    });
    promisePair = await measureAsync(PAIRS / 10, async () => {
      for (let i = 0; i < PAIRS / 10; i++) {
        await promises.semop(semid, down);
        await promises.semop(semid, up);
      }
    });
  } finally {
    semctl(semid, 0, IPC_RMID);
  }
  const set = SemaphoreSet.createSync(IPC_PRIVATE, { initialValue: 1 });
  let classPair: number;
  try {
    classPair = measure(PAIRS, () => {
      for (let i = 0; i < PAIRS; i++) {
        set.acquireSync();
        set.release();
      }
    });
  } finally {
    set.remove();
  }

  console.log('  ping-pong: A gives semaphore 0 and takes 1, B takes 0 and gives 1');
  if (cPingPong === undefined) console.log('    C (no compiler found)');
  else row('  C semop', cPingPong, 'op');
  row('  semop', sync, 'op', compared(sync, cPingPong, 1.25));
  row('  kernel-ipc/promises semop', promise, 'op');
  console.log('  uncontended: take one and give it back');
  if (cPair !== undefined) row('  C semop', cPair, 'op');
  row('  semop', pair, 'op', compared(pair, cPair, 1.5));
  row('  SemaphoreSet acquireSync + release', classPair, 'op', compared(classPair, cPair, 1.5));
  row('  kernel-ipc/promises semop', promisePair, 'op');
}
