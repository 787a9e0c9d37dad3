// Pending promise calls: what N receives waiting on one queue cost the process (threads,
// memory, mappings), how long aborting them all takes, and what is left once they ended. Each
// count is measured in a process of its own: one after another in one process, the second
// would start from what the first left in the heap and the allocator.
// Alone: node dist/bench/pending.js [counts...]
import { execFile } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { IPC_PRIVATE, IPC_RMID, msgctl, msgget } from '../lib';
import * as promises from '../lib/promises';

interface Usage {
  threads: number;
  vmMiB: number;
  rssMiB: number;
  mappings: number;
}

function usage(): Usage {
  const status = readFileSync('/proc/self/status', 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(status)![1]);
  return {
    threads: field('Threads'),
    vmMiB: Math.round(field('VmSize') / 1024),
    rssMiB: Math.round(field('VmRSS') / 1024),
    mappings: readFileSync('/proc/self/maps', 'utf8').split('\n').length - 1,
  };
}

function delta(after: Usage, before: Usage): string {
  const signed = (difference: number) => `${difference >= 0 ? '+' : ''}${difference}`;
  return `${signed(after.threads - before.threads)} threads, ${signed(after.vmMiB - before.vmMiB)} MiB virtual, `
    + `${signed(after.rssMiB - before.rssMiB)} MiB RSS, ${signed(after.mappings - before.mappings)} mappings`;
}

interface Cost {
  startMs: number;
  pending: string;
  abortMs: number;
  settledMs: number;
  after: string;
}

/** N receives pending on one queue, then aborted; resolves with what each stage cost. */
export async function pendingCost(count: number): Promise<Cost> {
  // libuv's threadpool, which kernel-ipc starts before its first waiter, is not counted.
  await readFile(__filename);
  const msqid = msgget(IPC_PRIVATE, 0o600);
  try {
    await sleep(50);
    const before = usage();
    const controller = new AbortController();
    // One signal for them all, as intended: no leak to warn of.
    setMaxListeners(Infinity, controller.signal);
    const starting = performance.now();
    const calls = Array.from({ length: count }, () => promises.msgrcv(msqid, 64, 0, 0, { signal: controller.signal }).then(
      () => 'received',
      (error: Error) => error.name,
    ));
    const startMs = performance.now() - starting;
    await sleep(200);
    const pending = delta(usage(), before);
    const started = performance.now();
    controller.abort();
    const abortMs = performance.now() - started;
    const outcomes = await Promise.all(calls);
    const settledMs = performance.now() - started;
    if (outcomes.some((outcome) => outcome !== 'AbortError')) throw new Error('a call did not end aborted');
    // Idle waiter threads end after 3 s.
    await sleep(4000);
    return { startMs, pending, abortMs, settledMs, after: delta(usage(), before) };
  } finally {
    msgctl(msqid, IPC_RMID);
  }
}

export async function pendingCalls(counts = [1000, 10000]): Promise<void> {
  console.log('pending promise calls: N msgrcv waiting on one queue, each N in a new process');
  for (const count of counts) {
    const { stdout } = await promisify(execFile)(process.execPath, [__filename, '--one', String(count)], { encoding: 'utf8' });
    const { startMs, pending, abortMs, settledMs, after } = JSON.parse(stdout) as Cost;
    console.log(`  ${String(count).padStart(6)} pending: ${pending}`);
    console.log(`         started in ${startMs.toFixed(1)} ms on the event loop`);
    console.log(`         abort(): ${abortMs.toFixed(1)} ms on the event loop, all settled after ${settledMs.toFixed(1)} ms`);
    console.log(`         4 s after they ended: ${after}`);
  }
}

if (require.main === module) {
  const [first, ...rest] = process.argv.slice(2);
  if (first === '--one') {
    void pendingCost(Number(rest[0])).then((cost) => process.stdout.write(JSON.stringify(cost)));
  } else {
    const counts = [first, ...rest].filter((arg) => arg !== undefined).map(Number);
    void pendingCalls(counts.length > 0 ? counts : undefined);
  }
}
