// npm run bench, as other tools read it: --quick --json prints one JSON row per line of the
// table, and the results land in bench-results/. Functional only: timings live in the bench.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../lib/native';

const run = promisify(execFile);

describe('npm run bench', function () {
  this.timeout(120000);

  it('--quick --json prints only JSON rows of every mechanism, and writes JSON and SVG', async () => {
    const { stdout } = await run(process.execPath, [join(packageRoot, 'dist', 'bench', 'index.js'), '--quick', '--json'], { encoding: 'utf8' });
    const rows = JSON.parse(stdout) as Array<{ name: string; metric: string; median: number }>;
    assert.deepEqual(stdout.trim().split('\n').length, rows.length + 2, 'one row per line, between the brackets');
    for (const row of rows) {
      assert.deepEqual(Object.keys(row), ['name', 'metric', 'median']);
      assert.ok(row.metric === 'rtt_us' || row.metric === 'gbps', row.metric);
      assert.ok(Number.isFinite(row.median) && row.median > 0, `${row.name}: ${row.median}`);
    }
    const names = rows.map((row) => row.name);
    for (const name of [
      'channel, sync (sendSync, receiveSync)', 'channel, async, after 1 ms (echo asleep)', 'channel, 1 MiB sent, read in place',
      'futex.wait + notify', 'msgsnd + msgrcv (kernel-ipc/promises)', 'Unix socket (node:net)', 'worker postMessage', 'FIFO, 1 MiB',
    ]) {
      assert.ok(names.includes(name), `${name} is missing`);
    }
    const saved = JSON.parse(readFileSync(join(packageRoot, 'bench-results', 'results.json'), 'utf8'));
    assert.deepEqual(saved.rows.map((row: { name: string }) => row.name), names);
    assert.match(readFileSync(join(packageRoot, 'bench-results', 'results.svg'), 'utf8'), /^<svg [^]*futex\.wait \+ notify[^]*<\/svg>\n$/);
  });
});
