// futex wait/notify on a word of an attachment: within a process, between two Node processes,
// with C programs on either side, and off the event loop.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { futex, IPC_CREAT, IPC_PRIVATE, shmat, shmdt } from '../lib';
import { packageRoot } from '../lib/native';
import { compileC, useShmCleanup, waitUntil } from './helpers';

const run = promisify(execFile);

// Waits on word 0 while it is 0 and says how it was woken; then sets word 2 to 9 and wakes it.
const cPeer = `
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
  _Atomic int32_t *words = shmat(atoi(argv[1]), NULL, 0);
  if (words == (void *)-1) { perror("shmat"); return 1; }
  if (strcmp(argv[2], "wait") == 0) {
    printf("futex %d\\n", SYS_futex);
    fflush(stdout);
    long woken = syscall(SYS_futex, &words[0], FUTEX_WAIT, 0, NULL, NULL, 0);
    printf("%s %d\\n", woken == 0 ? "woken" : "not woken", atomic_load(&words[0]));
  } else {
    atomic_store(&words[2], 9);
    printf("%ld\\n", syscall(SYS_futex, &words[2], FUTEX_WAKE, 1, NULL, NULL, 0));
  }
  return 0;
}
`;

/**
 * Whether the main thread of `pid` is blocked in a shared futex wait (`op`: FUTEX_WAIT is 0,
 * FUTEX_WAIT_BITSET 9; runtimes wait on private futexes, with op 128 or more) for the word
 * to change from 0.
 */
function inFutexWait(pid: number, sysFutex: number, op: number): boolean {
  const [number, , givenOp, value] = readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ');
  return Number(number) === sysFutex && Number(givenOp) === op && Number(value) === 0;
}

describe('futex', function () {
  this.timeout(30000);
  const shm = useShmCleanup();

  /** A new segment's words, as an Int32Array over its attachment. */
  function words(count = 16): { id: number; view: Int32Array } {
    const id = shm.shmget(IPC_PRIVATE, 4 * count, IPC_CREAT | 0o600);
    const buffer = shm.shmat(id);
    return { id, view: new Int32Array(buffer.buffer, buffer.byteOffset, count) };
  }

  it('says not-equal or timed-out without a waker, as Atomics.wait does', async () => {
    const { view } = words();
    Atomics.store(view, 0, 5);
    assert.equal(futex.wait(view, 0, 4), 'not-equal');
    assert.equal(futex.wait(view, 0, 5, { timeout: 0 }), 'timed-out');
    const started = performance.now();
    assert.equal(futex.wait(view, 0, 5, { timeout: 20.5 }), 'timed-out');
    assert.ok(performance.now() - started >= 20, 'it waited');
    assert.equal(await futex.waitAsync(view, 0, 4), 'not-equal');
    assert.equal(await futex.waitAsync(view, 0, 5, { timeout: 10 }), 'timed-out');
    assert.equal(futex.notify(view, 0), 0);
  });

  it('wakes waitAsync from this process without blocking the event loop, and an abort leaves no waiter', async () => {
    const { view } = words();
    const woken = futex.waitAsync(view, 3, 0);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    // A notify finds nobody until the wait's thread is in the kernel; then it wakes it.
    await waitUntil(() => futex.notify(view, 3) === 1);
    assert.equal(await woken, 'ok');
    await waitUntil(() => ticks > 5);
    clearInterval(ticker);

    const controller = new AbortController();
    const aborted = futex.waitAsync(view, 4, 0, { signal: controller.signal });
    await sleep(20);
    controller.abort();
    await assert.rejects(aborted, { name: 'AbortError' });
    assert.equal(futex.notify(view, 4), 0, 'the aborted wait left the kernel');
  });

  it('ping-pongs two Node processes, one waiting synchronously and one with waitAsync', async () => {
    const { id } = words();
    const rounds = 2000;
    // Word 0 is the ping, word 1 the pong: each side waits for the other's count.
    const script = `
      const { futex, shmat } = require('kernel-ipc');
      const [id, side, rounds] = process.argv.slice(1).map(Number);
      const buffer = shmat(id);
      const view = new Int32Array(buffer.buffer, buffer.byteOffset, 16);
      const [mine, theirs] = side === 0 ? [0, 1] : [1, 0];
      (async () => {
        for (let i = 1; i <= rounds; i++) {
          if (side === 0) {
            Atomics.store(view, mine, i);
            futex.notify(view, mine);
          }
          for (let seen = Atomics.load(view, theirs); seen < i; seen = Atomics.load(view, theirs)) {
            if (side === 0) futex.wait(view, theirs, seen);
            else await futex.waitAsync(view, theirs, seen);
          }
          if (side === 1) {
            Atomics.store(view, mine, i);
            futex.notify(view, mine);
          }
        }
        process.stdout.write(String(Atomics.load(view, mine)));
      })();`;
    const sides = [0, 1].map((side) => run(process.execPath, ['-e', script, String(id), String(side), String(rounds)], { cwd: packageRoot, timeout: 20000 }));
    const [a, b] = await Promise.all(sides);
    assert.deepEqual([a.stdout, b.stdout], [String(rounds), String(rounds)]);
  });

  it('wakes a C program waiting on the word, and is woken by one', async () => {
    const { id, view } = words();
    const program = compileC(cPeer);
    const waiter = spawn(program, [String(id), 'wait'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    waiter.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    await waitUntil(() => out.startsWith('futex '));
    const sysFutex = Number(out.split(/\s/)[1]);
    await waitUntil(() => inFutexWait(waiter.pid!, sysFutex, 0));
    Atomics.store(view, 0, 7);
    assert.equal(futex.notify(view, 0), 1);
    await once(waiter, 'exit');
    assert.match(out, /woken 7\n$/);

    // The other way: a Node process waits synchronously on word 2 until the C program wakes it.
    const script = `
      const { futex, shmat } = require('kernel-ipc');
      const buffer = shmat(Number(process.argv[1]));
      process.stdout.write(futex.wait(new Int32Array(buffer.buffer, buffer.byteOffset, 4), 2, 0));`;
    const node = spawn(process.execPath, ['-e', script, String(id)], { cwd: packageRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    let said = '';
    node.stdout.setEncoding('utf8').on('data', (chunk: string) => (said += chunk));
    await waitUntil(() => inFutexWait(node.pid!, sysFutex, 9));
    const { stdout: woke } = await run(program, [String(id), 'wake']);
    await once(node, 'exit');
    assert.deepEqual([woke.trim(), said], ['1', 'ok']);
  });

  it('lets process.exit() end a process whose worker waits synchronously, and ref: false not hold it', async () => {
    const { id } = words();
    const script = `
      const { Worker } = require('node:worker_threads');
      const { futex, shmat } = require('kernel-ipc');
      const id = Number(process.argv[1]);
      const buffer = shmat(id);
      futex.waitAsync(new Int32Array(buffer.buffer, buffer.byteOffset, 4), 0, 0, { ref: false });
      const worker = new Worker(\`
        const { futex, shmat } = require('kernel-ipc');
        const buffer = shmat(\${id});
        require('node:worker_threads').parentPort.postMessage('waiting');
        futex.wait(new Int32Array(buffer.buffer, buffer.byteOffset, 4), 0, 0);\`, { eval: true });
      worker.on('message', () => setTimeout(() => process.exit(3), 50));`;
    const child = spawn(process.execPath, ['-e', script, String(id)], { cwd: packageRoot, stdio: 'inherit' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    const [code] = await once(child, 'exit');
    clearTimeout(timer);
    assert.equal(code, 3);
  });

  it('keeps a waited word mapped, and checks the view from what V8 knows of it (in a child: a failure would crash)', async () => {
    const flags = 'transfer' in ArrayBuffer.prototype ? [] : ['--harmony-rab-gsab-transfer'];
    const { stdout } = await run(process.execPath, ['--expose-gc', ...flags, join(__dirname, 'fixtures', 'futex-hostile.js')], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(stdout), {
      attachedWhilePending: '2',
      moved: 'ok',
      length: 'ERR_OUT_OF_RANGE',
      detached: 'ERR_INVALID_ARG_TYPE',
      notInt32: 'ERR_INVALID_ARG_TYPE',
    });
  });

  it('rejects what is not a word of an attachment, and bad arguments, before any system call', async () => {
    const { view } = words(4);
    const notShared = [new Int32Array(4), new Int32Array(new SharedArrayBuffer(16)), new Uint32Array(view.buffer), view.buffer];
    for (const wrong of notShared) {
      assert.throws(() => futex.wait(wrong as Int32Array, 0, 0), { name: 'TypeError', message: /"view"/ });
      assert.throws(() => futex.notify(wrong as Int32Array, 0), { name: 'TypeError', message: /"view"/ });
      await assert.rejects(futex.waitAsync(wrong as Int32Array, 0, 0), { name: 'TypeError', message: /"view"/ });
    }
    assert.throws(() => futex.wait(view, 4, 0), { name: 'RangeError', message: /"index"/ });
    assert.throws(() => futex.wait(view, 0, 2 ** 31), { name: 'RangeError', message: /"expected"/ });
    assert.throws(() => futex.wait(view, 0, 0, { timeout: -1 }), { name: 'RangeError', message: /"options.timeout"/ });
    assert.throws(() => futex.notify(view, 0, -1), { name: 'RangeError', message: /"count"/ });
    const waiting = futex.waitAsync(view, -1, 0);
    assert.ok(waiting instanceof Promise);
    await assert.rejects(waiting, { name: 'RangeError', message: /"index"/ });
    await assert.rejects(futex.waitAsync(view, 0, 0, { signal: 1 as never }), { name: 'TypeError', message: /"options.signal"/ });
    // A detached attachment's views are over no attachment any more.
    const other = shmat(shm.shmget(IPC_PRIVATE, 16, IPC_CREAT | 0o600));
    const detached = new Int32Array(other.buffer, other.byteOffset, 4);
    assert.equal(futex.notify(detached, 0), 0);
    shmdt(other);
    assert.throws(() => futex.notify(detached, 0), { name: 'TypeError', message: /"view"/ });
  });
});
