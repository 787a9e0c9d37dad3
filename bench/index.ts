// npm run bench: medians of several runs, printed side by side. Timings live here, never in tests.
import { randomFillSync } from 'node:crypto';
import { IPC_PRIVATE, IPC_RMID, shmat, shmctl, shmdt, shmget, SHM_RDONLY } from '../lib';

const RUNS = 7;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Median nanoseconds per operation of `fn`, which performs `ops` operations per call. */
function measure(ops: number, fn: () => void): number {
  fn();
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = process.hrtime.bigint();
    fn();
    runs.push(Number(process.hrtime.bigint() - started) / ops);
  }
  return median(runs);
}

function row(name: string, nanos: number, unit: 'op' | 'MiB'): void {
  const perOp = nanos < 1000 ? `${nanos.toFixed(1)} ns/op` : `${(nanos / 1000).toFixed(2)} µs/op`;
  const shown = unit === 'op' ? perOp : `${(1e9 / nanos / 1024).toFixed(0)} GiB/s`;
  console.log(`  ${name.padEnd(48)} ${shown.padStart(14)}`);
}

function sharedMemory(): void {
  const MiB = 1024 * 1024;
  const id = shmget(IPC_PRIVATE, 64 * MiB, 0o600);
  try {
    console.log(`shared memory (median of ${RUNS} runs)`);
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

sharedMemory();
