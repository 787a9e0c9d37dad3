// The C floor of each mechanism: the same round trip (or bulk transfer) between two C
// processes, driven line by line so that its runs interleave with Node's (see run.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { compileC, haveCompiler } from '../tools/compile-c';
import { floorCpus } from './placement';

// Usage: floors <mode> [<cpu> <peer cpu>], then one line per run on stdin: a count of round trips (or MiB), to
// which it answers with the nanoseconds per round trip (or per MiB). Modes: spin,
// spin-futex, futex, msg, sem, pipe, unix (round trips of 64 bytes); memcpy, pipe-bulk,
// unix-bulk, ring-bulk (a ring of four 1 MiB slots in shared memory, spin then futex, copied in
// and out), ring-bulk-in-place (copied in, read in place) (1 MiB at a time).
const source = `
#define _GNU_SOURCE
#include <linux/futex.h>
#include <sched.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024 * 1024)
#define SPINS 50000
#define SLOTS 4

/* Keeps the calling process on the CPU numbered cpu, if one is given. */
static void pin(const char *cpu) {
  if (cpu == NULL) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(atoi(cpu), &set);
  sched_setaffinity(0, sizeof set, &set);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static void futex_wait(_Atomic int32_t *w, int32_t v) { syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0); }
static void futex_wake(_Atomic int32_t *w) { syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0); }

/* Words: 0 the ping, 1 the pong, 2 stop, 3 whether the pinger sleeps, 4 whether the echo sleeps. */
static _Atomic int32_t *w;
static int spin_mode; /* 0 spin, 1 spin then futex, 2 futex */

/* Waits until *word >= target: spinning, then (unless spin_mode 0) sleeping on the futex
   once it said so in *sleeping; 2 goes to sleep at once. */
static void await_word(_Atomic int32_t *word, int32_t target, _Atomic int32_t *sleeping) {
  /* Pure spinning gives up only after a fraction of a millisecond, far longer than a hop, so that
     it sleeps between runs rather than take a CPU from the next row. */
  if (spin_mode != 2)
    for (long i = 0; i < (spin_mode == 0 ? 200000L : SPINS); i++)
      if (atomic_load(word) >= target || atomic_load(&w[2])) return;
  while (atomic_load(word) < target && !atomic_load(&w[2])) {
    atomic_store(sleeping, 1);
    int32_t seen = atomic_load(word);
    if (seen < target && !atomic_load(&w[2])) futex_wait(word, seen);
    atomic_store(sleeping, 0);
  }
}

static void publish(_Atomic int32_t *word, int32_t value, _Atomic int32_t *sleeping) {
  atomic_store(word, value);
  if (spin_mode == 2 || atomic_load(sleeping)) futex_wake(word);
}

int main(int argc, char **argv) {
  const char *mode = argv[1];
  pin(argc > 3 ? argv[2] : NULL);
  char line[64];
  setvbuf(stdout, NULL, _IOLBF, 0);
  int fds[2][2] = {{-1, -1}, {-1, -1}}, q = -1, sem = -1;
  char *buf = malloc(MIB), *other = malloc(MIB);
  memset(buf, 'x', MIB);
  memset(other, 'y', MIB);
  int ring = !strncmp(mode, "ring", 4), in_place = strstr(mode, "in-place") != NULL;
  if (ring) {
    spin_mode = 1;
    w = mmap(NULL, 4096 + SLOTS * MIB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  } else if (!strncmp(mode, "spin", 4) || !strcmp(mode, "futex")) {
    spin_mode = !strcmp(mode, "spin") ? 0 : !strcmp(mode, "spin-futex") ? 1 : 2;
    w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  } else if (!strcmp(mode, "msg")) {
    q = msgget(IPC_PRIVATE, 0600);
  } else if (!strcmp(mode, "sem")) {
    sem = semget(IPC_PRIVATE, 2, 0600);
    w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  } else if (!strncmp(mode, "pipe", 4)) {
    if (pipe(fds[0]) || pipe(fds[1])) return 1;
  } else if (!strncmp(mode, "unix", 4)) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds[0])) return 1;
    fds[1][0] = fds[0][1];
    fds[1][1] = fds[0][0];
  }
  int bulk = strstr(mode, "bulk") != NULL;
  pid_t pid = -1;
  /* Gone with the benchmark, however it ends. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (strcmp(mode, "memcpy") && (pid = fork()) == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    pin(argc > 3 ? argv[3] : NULL);
    /* The other side: answers (or, in bulk, sends) until told to stop. */
    if (fds[0][1] >= 0) {
      close(fds[0][1]);
      if (fds[1][0] != fds[0][1]) close(fds[1][0]);
    }
    if (ring) {
      /* Words: 0 slots filled, 1 slots emptied; the writer waits for a free slot. */
      for (int32_t k = 1; !atomic_load(&w[2]); k++) {
        await_word(&w[1], k - SLOTS, &w[4]);
        memcpy((char *)w + 4096 + (size_t)((k - 1) % SLOTS) * MIB, other, MIB);
        publish(&w[0], k, &w[3]);
      }
    } else if (w && sem < 0) {
      for (int32_t round = 1; !atomic_load(&w[2]); round++) {
        await_word(&w[0], round, &w[4]);
        publish(&w[1], round, &w[3]);
      }
    } else if (q >= 0) {
      struct { long type; char text[64]; } m;
      while (msgrcv(q, &m, 64, 1, 0) > 0) { m.type = 2; msgsnd(q, &m, 64, 0); }
    } else if (sem >= 0) {
      struct sembuf take = {0, -1, 0}, give = {1, 1, 0};
      while (semop(sem, &take, 1) == 0) { memcpy((char *)w + 1024, (char *)w + 512, 64); semop(sem, &give, 1); }
    } else if (bulk) {
      uint32_t mib;
      while (read(fds[0][0], &mib, 4) == 4)
        for (uint32_t i = 0; i < mib; i++)
          for (size_t off = 0; off < MIB;) { ssize_t n = write(fds[1][1], other + off, MIB - off); if (n <= 0) _exit(1); off += n; }
    } else {
      char m[64];
      while (read(fds[0][0], m, 64) == 64) if (write(fds[1][1], m, 64) != 64) _exit(1);
    }
    _exit(0);
  }
  if (fds[0][0] >= 0) {
    close(fds[0][0]);
    if (fds[1][1] != fds[0][0]) close(fds[1][1]);
  }
  int32_t round = 0;
  while (fgets(line, sizeof line, stdin)) {
    int count = atoi(line);
    double started = now();
    for (int i = 0; i < count; i++) {
      if (!strcmp(mode, "memcpy")) {
        memcpy(other, buf, MIB);
        __asm__ volatile("" ::: "memory");
      } else if (ring) {
        await_word(&w[0], ++round, &w[3]);
        if (!in_place) memcpy(other, (char *)w + 4096 + (size_t)((round - 1) % SLOTS) * MIB, MIB);
        __asm__ volatile("" ::: "memory");
        publish(&w[1], round, &w[4]);
      } else if (w && sem < 0) {
        publish(&w[0], ++round, &w[4]);
        await_word(&w[1], round, &w[3]);
      } else if (q >= 0) {
        struct { long type; char text[64]; } m = {1, {0}};
        msgsnd(q, &m, 64, 0);
        msgrcv(q, &m, 64, 2, 0);
      } else if (sem >= 0) {
        struct sembuf give = {0, 1, 0}, take = {1, -1, 0};
        memcpy((char *)w + 512, buf, 64);
        semop(sem, &give, 1);
        semop(sem, &take, 1);
        memcpy(other, (char *)w + 1024, 64);
      } else if (bulk) {
        uint32_t mib = 1;
        if (write(fds[0][1], &mib, 4) != 4) return 1;
        for (size_t got = 0; got < MIB;) { ssize_t n = read(fds[1][0], other, MIB - got); if (n <= 0) return 1; got += n; }
      } else {
        if (write(fds[0][1], buf, 64) != 64) return 1;
        for (size_t got = 0; got < 64;) { ssize_t n = read(fds[1][0], other, 64 - got); if (n <= 0) return 1; got += n; }
      }
    }
    printf("%f\\n", (now() - started) / count);
  }
  if (w) { atomic_store(&w[2], 1); atomic_fetch_add(&w[0], 1); futex_wake(&w[0]); atomic_fetch_add(&w[1], 1); futex_wake(&w[1]); }
  if (q >= 0) msgctl(q, IPC_RMID, NULL);
  if (sem >= 0) semctl(sem, 0, IPC_RMID);
  close(fds[0][1]);
  if (pid > 0) waitpid(pid, NULL, 0);
  return 0;
}
`;

export type FloorMode = 'spin' | 'spin-futex' | 'futex' | 'msg' | 'sem' | 'pipe' | 'unix' | 'memcpy' | 'pipe-bulk' | 'unix-bulk' | 'ring-bulk' | 'ring-bulk-in-place';

/** A C program of `mode` waiting for runs; undefined where there is no compiler. */
export class Floor {
  readonly #child: ChildProcess;
  readonly #lines: Interface;
  readonly #answers: string[] = [];
  #waiting: ((line: string) => void) | undefined;

  private constructor(mode: FloorMode) {
    this.#child = spawn(compileC(source), [mode, ...floorCpus()], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.#lines = createInterface({ input: this.#child.stdout! });
    this.#lines.on('line', (line) => {
      if (this.#waiting) this.#waiting(line);
      else this.#answers.push(line);
    });
  }

  static start(mode: FloorMode): Floor | undefined {
    return haveCompiler() ? new Floor(mode) : undefined;
  }

  /** Nanoseconds per round trip (or MiB) over `count` of them. */
  async run(count: number): Promise<number> {
    this.#child.stdin!.write(`${count}\n`);
    const line = this.#answers.shift() ?? await new Promise<string>((resolve) => (this.#waiting = resolve));
    this.#waiting = undefined;
    return Number(line);
  }

  async close(): Promise<void> {
    this.#child.stdin!.end();
    if (this.#child.exitCode === null) await new Promise((resolve) => this.#child.once('exit', resolve));
    this.#lines.close();
  }
}
