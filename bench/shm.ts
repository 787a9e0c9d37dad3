// What else costs: attaching, copying and reading shared memory beside plain Buffers, and a
// process-wide sigprocmask.
import { randomFillSync } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { IPC_PRIVATE, IPC_RMID, SIG_BLOCK, SIG_UNBLOCK, shmat, shmctl, shmdt, shmget, SHM_RDONLY, sigprocmask } from '../lib';
import { measure, row, RUNS } from './measure';

export function moreMeasurements(): void {
  sharedMemory();
  const threads = readdirSync('/proc/self/task').length;
  console.log(`\nsignals (median of ${RUNS} runs)`);
  row(`sigprocmask, every one of ${threads} threads`, measure(2000, () => {
    for (let i = 0; i < 1000; i++) {
      sigprocmask(SIG_BLOCK, ['SIGUSR2']);
      sigprocmask(SIG_UNBLOCK, ['SIGUSR2']);
    }
  }), 'op');
}

function sharedMemory(): void {
  const MiB = 1024 * 1024;
  const id = shmget(IPC_PRIVATE, 64 * MiB, 0o600);
  try {
    console.log(`\nshared memory (median of ${RUNS} runs)`);
    const pairs = 2000;
    const small = shmget(IPC_PRIVATE, 4096, 0o600);
    try {
      row('shmat + shmdt of a 4 KiB segment', measure(pairs, () => {
        for (let i = 0; i < pairs; i++) shmdt(shmat(small));
      }), 'op');
    } finally {
      shmctl(small, IPC_RMID);
    }
    // V8 counts each attachment's bytes as external memory, so large ones trigger GCs.
    row('shmat + shmdt of a 64 MiB segment', measure(pairs, () => {
      for (let i = 0; i < pairs; i++) shmdt(shmat(id));
    }), 'op');

    const source = randomFillSync(Buffer.allocUnsafe(64 * MiB));
    const segment = shmat(id);
    const heap = Buffer.alloc(64 * MiB);
    row('copy 64 MiB into the segment', measure(64, () => source.copy(segment)), 'MiB');
    row('copy 64 MiB into a Buffer (for comparison)', measure(64, () => source.copy(heap)), 'MiB');

    // A read-only view goes through the addon for every read, with its bounds checked there.
    const view = shmat(id, SHM_RDONLY);
    const reads = 1_000_000;
    let sink = 0;
    row('readUInt32LE on a Buffer attachment', measure(reads, () => {
      for (let i = 0; i < reads; i++) sink += segment.readUInt32LE((i & 0xffff) * 4);
    }), 'op');
    row('readUInt32LE on a ReadOnlyBuffer attachment', measure(reads, () => {
      for (let i = 0; i < reads; i++) sink += view.readUInt32LE((i & 0xffff) * 4);
    }), 'op');
    row('copy 64 MiB out of a ReadOnlyBuffer', measure(64, () => view.copy(heap)), 'MiB');
    if (Number.isNaN(sink)) console.log(sink);
    shmdt(view);
    shmdt(segment);
  } finally {
    shmctl(id, IPC_RMID);
  }
}

