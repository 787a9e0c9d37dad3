// FIFOs: throughput between two Node processes with kernel-ipc's streams and with Node's fs
// streams; and what sigprocmask costs for the whole process.
import { fork } from 'node:child_process';
import { createReadStream, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFifoReader, mkfifo, SIG_BLOCK, SIG_UNBLOCK, sigprocmask } from '../lib';
import { measure, median, row, RUNS } from './measure';

const MEBIBYTES = 256;

/** Nanoseconds per MiB from the first byte to the last, read by `kind`'s reader. */
async function transfer(path: string, kind: 'kernel-ipc' | 'fs'): Promise<number> {
  const writer = fork(join(__dirname, 'fifo-writer.js'), [path, kind, String(MEBIBYTES)]);
  const reader: Readable = kind === 'fs' ? createReadStream(path) : createFifoReader(path);
  let started = 0n;
  let bytes = 0;
  for await (const chunk of reader) {
    if (started === 0n) started = process.hrtime.bigint();
    bytes += (chunk as Buffer).length;
  }
  const elapsed = Number(process.hrtime.bigint() - started);
  await new Promise((resolve) => writer.once('exit', resolve));
  if (bytes !== MEBIBYTES * 1024 * 1024) throw new Error(`read ${bytes} bytes`);
  return elapsed / MEBIBYTES;
}

export async function fifos(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kernel-ipc-bench-'));
  try {
    const path = join(dir, 'fifo');
    mkfifo(path);
    console.log(`\nFIFOs: ${MEBIBYTES} MiB from one Node process to another in 64 KiB writes (median of ${RUNS} runs)`);
    for (const kind of ['kernel-ipc', 'fs'] as const) {
      const runs: number[] = [];
      for (let i = 0; i < RUNS; i++) runs.push(await transfer(path, kind));
      const name = kind === 'fs' ? 'fs.createReadStream / createWriteStream' : 'createFifoReader / openFifoWriter';
      console.log(`  ${name.padEnd(48)} ${`${(1e9 / median(runs) / 1024).toFixed(2)} GiB/s`.padStart(14)}`);
    }
  } finally {
    rmSync(dir, { recursive: true });
  }

  const threads = readdirSync('/proc/self/task').length;
  console.log(`\nsignals (median of ${RUNS} runs)`);
  const perCall = measure(2000, () => {
    for (let i = 0; i < 1000; i++) {
      sigprocmask(SIG_BLOCK, ['SIGUSR2']);
      sigprocmask(SIG_UNBLOCK, ['SIGUSR2']);
    }
  });
  row(`sigprocmask, every one of ${threads} threads`, perCall, 'op');
}
