// Message queues: the round trip of a 64-byte message between two processes (A sends type 1,
// B answers type 2), beside the same in C, child_process send() and a Unix-domain socket.
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IPC_PRIVATE, IPC_RMID, msgctl, msgget, msgrcv, msgsnd } from '../lib';
import * as promises from '../lib/promises';
import { compileC, haveCompiler } from '../tools/compile-c';
import { measure, measureAsync, median, row, RUNS } from './measure';

const ROUNDS = 5000;
const payload = Buffer.alloc(64, 'x');

// Prints the nanoseconds per round trip of each run: a warm-up run, then `runs` more.
const roundTripInC = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct message { long mtype; char mtext[64]; };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
  int rounds = atoi(argv[1]), runs = atoi(argv[2]);
  int q = msgget(IPC_PRIVATE, 0600);
  if (q < 0) return 1;
  struct message m;
  pid_t pid = fork();
  if (pid == 0) {
    for (;;) {
      ssize_t n = msgrcv(q, &m, sizeof m.mtext, 1, 0);
      if (n <= 0) _exit(n < 0);
      m.mtype = 2;
      msgsnd(q, &m, n, 0);
    }
  }
  memset(m.mtext, 'x', sizeof m.mtext);
  for (int run = 0; run <= runs; run++) {
    double started = now();
    for (int i = 0; i < rounds; i++) {
      m.mtype = 1;
      msgsnd(q, &m, sizeof m.mtext, 0);
      msgrcv(q, &m, sizeof m.mtext, 2, 0);
    }
    if (run > 0) printf("%f\\n", (now() - started) / rounds);
  }
  m.mtype = 1;
  msgsnd(q, &m, 0, 0);
  waitpid(pid, NULL, 0);
  msgctl(q, IPC_RMID, NULL);
  return 0;
}
`;

function echo(...args: string[]): ChildProcess {
  return fork(join(__dirname, 'msg-echo.js'), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill();
  await exited;
}

/** A queue answered by a Node process that uses the sync mirror or the promise API. */
async function withQueueEcho(mode: 'sync' | 'promise', run: (msqid: number) => Promise<number> | number): Promise<number> {
  const msqid = msgget(IPC_PRIVATE, 0o600);
  const child = echo(mode, String(msqid));
  try {
    const nanos = await run(msqid);
    msgsnd(msqid, 1, '');
    await once(child, 'exit');
    return nanos;
  } finally {
    await stop(child);
    msgctl(msqid, IPC_RMID);
  }
}

async function childProcessSend(): Promise<number> {
  const child = echo('process');
  const text = payload.toString('latin1');
  let answered: () => void = () => {};
  child.on('message', () => answered());
  try {
    return await measureAsync(ROUNDS, async () => {
      for (let i = 0; i < ROUNDS; i++) {
        await new Promise<void>((resolve) => {
          answered = resolve;
          child.send(text);
        });
      }
    });
  } finally {
    await stop(child);
  }
}

async function unixSocket(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'kernel-ipc-bench-'));
  const path = join(dir, 'echo.sock');
  const child = echo('socket', path);
  try {
    await once(child, 'message');
    const socket = connect(path);
    socket.setNoDelay(true);
    await once(socket, 'connect');
    let awaited = 0;
    let answered: () => void = () => {};
    socket.on('data', (chunk: Buffer) => {
      awaited -= chunk.length;
      if (awaited === 0) answered();
    });
    try {
      return await measureAsync(ROUNDS, async () => {
        for (let i = 0; i < ROUNDS; i++) {
          await new Promise<void>((resolve) => {
            answered = resolve;
            awaited = payload.length;
            socket.write(payload);
          });
        }
      });
    } finally {
      socket.destroy();
    }
  } finally {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function messageQueues(): Promise<void> {
  console.log(`\nmessage queues: 64-byte round trip between two processes (median of ${RUNS} runs of ${ROUNDS})`);
  const c = haveCompiler()
    ? median(execFileSync(compileC(roundTripInC), [String(ROUNDS), String(RUNS)], { encoding: 'utf8' }).trim().split('\n').map(Number))
    : undefined;
  const sync = await withQueueEcho('sync', (msqid) => measure(ROUNDS, () => {
    for (let i = 0; i < ROUNDS; i++) {
      msgsnd(msqid, 1, payload);
      msgrcv(msqid, 64, 2);
    }
  }));
  const promise = await withQueueEcho('promise', (msqid) => measureAsync(ROUNDS, async () => {
    for (let i = 0; i < ROUNDS; i++) {
      await promises.msgsnd(msqid, 1, payload);
      await promises.msgrcv(msqid, 64, 2);
    }
  }));
  const socket = await unixSocket();
  const processSend = await childProcessSend();
  if (c === undefined) console.log('  C (no compiler found)');
  else row('C msgsnd + msgrcv', c, 'op');
  row('sync msgsnd + msgrcv', sync, 'op', c === undefined ? '' : `${(sync / c).toFixed(2)}x C (target <= 1.25x)`);
  row('kernel-ipc/promises msgsnd + msgrcv', promise, 'op', `${(promise / socket).toFixed(2)}x the socket (target <= 1x)`);
  row('Unix-domain socket (net)', socket, 'op');
  row('child_process send()', processSend, 'op');
}
