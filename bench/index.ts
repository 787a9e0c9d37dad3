// npm run bench [-- --quick] [-- --json]: every mechanism side by side, in real processes.
// Runs of all rows interleave (run 1 of each row, then run 2...), and ratios are medians of
// per-run ratios, so that what the machine does meanwhile weighs on both sides of a ratio.
// Prints the table (or, with --json, only JSON rows) and writes bench-results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../lib/native';
import { pendingCalls } from './pending';
import { inUnit, median, type Row, svg, table } from './report';
import { bulkTransfers, type Mechanism, roundTrips, type Session, SOCKET } from './sessions';
import { describePlacement, place } from './placement';
import { moreMeasurements } from './shm';
import { channelSoak } from './soak';

const quick = process.argv.includes('--quick');
const json = process.argv.includes('--json');
const RUNS = quick ? 3 : 7;
const ROUND_TRIPS = quick ? 1000 : 5000;
// 1 GiB moved per row in all: RUNS runs and a warm-up.
const MEBIBYTES = quick ? 32 : 1024 / (RUNS + 1);
// Round trips in the warm-up run, which is dropped: V8 optimizes a row's JavaScript only after
// some thousands of calls, and until then a channel round trip takes ten times as long.
const WARM_UP = 10_000;

function progress(text: string): void {
  if (!json) process.stderr.write(`\r\x1b[K${text}`);
}

// Every session open, to close on Ctrl-C too: their processes and kernel objects must not stay.
const open = new Set<Session>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    await closeAll([...open]);
    process.kill(process.pid, signal);
  });
}

async function closeAll(sessions: Array<Session | undefined>): Promise<void> {
  for (const session of sessions) {
    if (session === undefined) continue;
    open.delete(session);
    try {
      await session.close();
    } catch (error) {
      process.stderr.write(`\ncould not close a session: ${error}\n`);
    }
  }
}

async function measureGroup(mechanisms: Mechanism[], count: number, warmUp = count): Promise<Row[]> {
  const sessions: Array<Session | undefined> = [];
  try {
    for (const mechanism of mechanisms) {
      progress(`starting ${mechanism.name}`);
      const session = await mechanism.start();
      sessions.push(session);
      if (session !== undefined) open.add(session);
    }
    const nanos: number[][] = mechanisms.map(() => []);
    // Run 0 warms up and is dropped.
    for (let run = 0; run <= RUNS; run++) {
      for (const [i, session] of sessions.entries()) {
        if (session === undefined) continue;
        progress(`run ${run}/${RUNS}: ${mechanisms[i].name}`);
        const value = await session.run(run === 0 ? warmUp : count);
        if (run > 0) nanos[i].push(value);
      }
    }
    const byName = new Map(mechanisms.map((mechanism, i) => [mechanism.name, nanos[i]]));
    const rows: Row[] = [];
    for (const [i, mechanism] of mechanisms.entries()) {
      if (sessions[i] === undefined) continue;
      const { metric } = mechanism;
      const runs = nanos[i];
      // Time for time, throughput for throughput: a ratio above 1 is slower, or faster.
      const against = (other: number[] | undefined) => (other === undefined || other.length === 0 || other === runs
        ? undefined
        : median(runs.map((value, run) => (metric === 'rtt_us' ? value / other[run] : other[run] / value))));
      rows.push({
        name: mechanism.name,
        metric,
        median: inUnit(metric, median(runs)),
        runs: runs.map((value) => inUnit(metric, value)),
        ...(mechanism.floor !== undefined && byName.get(mechanism.floor)?.length
          ? { floor: mechanism.floor, vsFloor: against(byName.get(mechanism.floor)) }
          : {}),
        ...(mechanism.name.startsWith('C ') ? {} : { vsSocket: against(byName.get(SOCKET[metric])) }),
      });
    }
    return rows;
  } finally {
    await closeAll(sessions);
  }
}

/** The rows that show what sharing one CPU does to a round trip. */
const ONE_CPU = ['C spin, then futex', 'channel, sync (sendSync, receiveSync)', 'channel, async (send, receive)', SOCKET.rtt_us];

async function main(): Promise<void> {
  place({ self: 0, peer: 1 });
  const rows = [...await measureGroup(roundTrips, ROUND_TRIPS, WARM_UP), ...await measureGroup(bulkTransfers, MEBIBYTES)];
  progress('');
  if (!json) process.stderr.write('\r\x1b[K');
  const title = `kernel-ipc ${quick ? 'quick ' : ''}benchmark, Node ${process.version}, ${cpus().length} CPUs (${describePlacement()}): medians of ${RUNS} interleaved runs`;
  const dir = join(packageRoot, 'bench-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify({ title, date: new Date().toISOString(), rows }, null, 2)}\n`);
  writeFileSync(join(dir, 'results.svg'), svg(rows, title));
  if (json) {
    process.stdout.write(`[\n${rows.map(({ name, metric, median: value }) => JSON.stringify({ name, metric, median: value })).join(',\n')}\n]\n`);
    return;
  }
  console.log(title);
  console.log(table(rows));
  console.log(`\n(also in ${join('bench-results', 'results.json')} and results.svg)`);
  if (quick) return;
  if (place({ self: 1, peer: 1 })) {
    const shared = await measureGroup(roundTrips.filter(({ name }) => ONE_CPU.includes(name)), ROUND_TRIPS, WARM_UP);
    progress('');
    console.log(`\nThe same with both processes on one CPU (${describePlacement()}):${table(shared).replace(/^\n[^\n]*/, '')}`);
    place({ self: 0, peer: 1 });
  }
  await channelSoak();
  moreMeasurements();
  await pendingCalls();
}

main().catch((error) => {
  process.stderr.write(`\n${error?.stack ?? error}\n`);
  process.exitCode = 1;
});
