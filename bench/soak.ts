// The channel over 10 million messages: resident memory of both processes before and after,
// their CPU time in the kernel, the slowest round trip, and (where strace is installed) every
// system call both make meanwhile, counted by strace attached to all their threads.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChannelReader, ChannelWriter } from '../lib';
import { echo, ended } from './sessions';

const ROUND_TRIPS = 5_000_000;

interface Usage {
  rssKiB: number;
  /** Clock ticks in user mode and in the kernel. */
  user: number;
  kernel: number;
}

function usage(pid: number): Usage {
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))!;
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssKiB: Number(rss[1]), user: Number(fields[11]), kernel: Number(fields[12]) };
}

/** strace counting the system calls of every thread of `pids` from now until stop(). */
async function countSystemCalls(pids: number[]): Promise<{ stop(): Promise<number> } | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'kernel-ipc-soak-'));
  const output = join(dir, 'summary');
  const strace = spawn('strace', ['-f', '-c', '-o', output, ...pids.flatMap((pid) => ['-p', String(pid)])], { stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  strace.stderr!.on('data', (chunk: Buffer) => (said += chunk));
  const attached = await Promise.race([
    once(strace, 'error').then(() => false),
    once(strace, 'exit').then(() => false),
    (async () => {
      while (!pids.every((pid) => said.includes(`Process ${pid} attached`))) await new Promise((resolve) => setTimeout(resolve, 20));
      return true;
    })(),
  ]);
  if (!attached) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return {
    async stop() {
      strace.kill('SIGINT');
      await once(strace, 'exit');
      const total = /^\s*100\.00\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total$/m.exec(readFileSync(output, 'latin1'));
      rmSync(dir, { recursive: true, force: true });
      return total === null ? 0 : Number(total[1]);
    },
  };
}

export async function channelSoak(): Promise<void> {
  const requests = ChannelWriter.create(null, { capacity: 64 * 1024 });
  const answers = ChannelReader.create(null, { capacity: 64 * 1024 });
  const child = echo('channel', String(requests.id), String(answers.id));
  try {
    await requests.connected;
    await answers.connected;
    const payload = Buffer.alloc(64, 'x');
    // The slowest round trip too: a lost wake-up shows as one as long as a liveness slice (50 ms).
    let slowest = 0;
    const roundTrips = (count: number) => {
      slowest = 0;
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        requests.sendSync(payload);
        answers.receiveSync();
        slowest = Math.max(slowest, performance.now() - started);
      }
    };
    roundTrips(100_000);
    const pids = [process.pid, child.pid!];
    const before = pids.map(usage);
    const strace = await countSystemCalls(pids);
    const started = process.hrtime.bigint();
    roundTrips(ROUND_TRIPS);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const calls = await strace?.stop();
    const after = pids.map(usage);
    const messages = 2 * ROUND_TRIPS;
    console.log(`\nchannel, ${messages / 1e6}M messages of 64 bytes (sync round trips) in ${seconds.toFixed(1)} s, the slowest round trip ${slowest.toFixed(2)} ms`);
    for (const [i, who] of ['this process', 'the echo'].entries()) {
      console.log(`  ${who.padEnd(14)} resident ${(before[i].rssKiB / 1024).toFixed(1)} -> ${(after[i].rssKiB / 1024).toFixed(1)} MiB, `
        + `CPU ${after[i].user - before[i].user} ticks in user mode, ${after[i].kernel - before[i].kernel} in the kernel`);
    }
    console.log(calls === undefined
      ? '  system calls: not counted (no strace here)'
      : `  system calls of both, every thread (strace -f -c): ${calls}, ${(calls / messages).toFixed(5)} per message`);
  } finally {
    requests.close();
    answers.release();
    await ended(child);
    answers.close();
  }
}
