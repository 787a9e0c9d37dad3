// kernel-ipc/promises semop: waiting off the event loop and the threadpool, abort and timeout
// that never hide an operation that happened, and how processes and workers with waits end.
import assert from 'node:assert/strict';
import { pbkdf2 } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as nextImmediate, setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { GETALL, GETNCNT, GETPID, GETVAL, IPC_NOWAIT, IPC_RMID, SEM_UNDO, SETALL, semctl, semop as semopSync } from '../lib';
import { semop } from '../lib/promises';
import {
  assertAliveWhileWaiting, assertExitWhileWaiting, assertIpcError, randomlyAborted, startPending, useSemCleanup, usePeers, useWaitSpy,
  waitUntil,
} from './helpers';

const fixture = (name: string) => join(__dirname, 'fixtures', name);
const take = (num = 0) => [{ num, op: -1 }];
const give = (num = 0) => [{ num, op: 1 }];

describe('kernel-ipc/promises semop', function () {
  this.timeout(30000);
  const sem = useSemCleanup();
  const waits = useWaitSpy('semopAsync');
  const peer = usePeers();

  it('completes at once when it can, else when another process acts', async () => {
    const id = sem.set(2);
    await semop(id, [{ num: 0, op: 2 }]);
    assert.equal(semctl(id, 0, GETVAL), 2);
    const other = peer();
    const later = semop(id, take(1));
    await waitUntil(() => semctl(id, 1, GETNCNT) === 1);
    await other.request('semop', id, give(1));
    await later;
    assert.equal(semctl(id, 1, GETVAL), 0);
    assert.equal(semctl(id, 1, GETPID), process.pid);
    // The peer waits in its promise; this process's operation completes it.
    const reply = other.request('semopAsync', id, take(1));
    await waitUntil(() => semctl(id, 1, GETNCNT) === 1);
    await semop(id, give(1));
    await reply;
    assert.equal(semctl(id, 1, GETPID), other.pid);
  });

  it('takes timeoutMs as semtimedop does, rejecting with EAGAIN', async () => {
    const id = sem.set();
    const started = performance.now();
    await assert.rejects(semop(id, take(), 30), (error) => assertIpcError(error, 'EAGAIN', 'semtimedop'));
    assert.ok(performance.now() - started >= 25, 'it waited');
    await assert.rejects(semop(id, take(), 0), (error) => assertIpcError(error, 'EAGAIN', 'semtimedop'));
    await assert.rejects(semop(id, [{ num: 0, op: -1, flags: IPC_NOWAIT }]), (error) => assertIpcError(error, 'EAGAIN', 'semop'));
    const taken = semop(id, take(), 10000, { ref: true });
    await waitUntil(() => semctl(id, 0, GETNCNT) === 1);
    semopSync(id, give());
    await taken;
    assert.equal(semctl(id, 0, GETVAL), 0);
  });

  it('rejects with AbortError or TimeoutError when stopped before the operation happened, and applies nothing', async () => {
    const id = sem.set();
    const reason = new Error('stop');
    await assert.rejects(semop(id, take(), { signal: AbortSignal.abort(reason) }), { name: 'AbortError', code: 'ABORT_ERR', cause: reason });
    const controller = new AbortController();
    const aborted = semop(id, take(), { signal: controller.signal });
    await waitUntil(() => semctl(id, 0, GETNCNT) === 1);
    controller.abort();
    await assert.rejects(aborted, { name: 'AbortError' });
    await assert.rejects(semop(id, take(), { timeout: 10 }), { name: 'TimeoutError', code: 'ETIMEDOUT', syscall: 'semop' });
    assert.equal(semctl(id, 0, GETNCNT), 0);
    // No stopped call is still waiting to take what is given now.
    semopSync(id, give());
    await sleep(20);
    assert.equal(semctl(id, 0, GETVAL), 1);
  });

  it('never reports as aborted an operation that happened, with thousands of aborts racing another process', async () => {
    const count = 3000;
    let aborts = 0;
    let rejected = 0;
    let raced = 0;
    // Whether an abort meets a call its waiter thread has is a matter of timing: on a loaded
    // machine one batch may not see it happen, so up to three do.
    for (let batch = 0; batch < 3 && (batch === 0 || raced === 0); batch++) {
      const id = sem.set();
      const giver = peer();
      let given = false;
      const giving = giver.request('givePaced', id, count).then(() => {
        given = true;
      });
      let taken = 0;
      while (taken < count) {
        const call = randomlyAborted((signal) => semop(id, take(), { signal }));
        const waited = waits.waited;
        if (call.aborting) aborts++;
        try {
          await call.result;
          taken++;
          // Aborted before its result came back from the waiter thread, and reported done anyway.
          if (waited && call.signal.aborted) raced++;
        } catch (error) {
          assert.equal((error as Error).name, 'AbortError');
          rejected++;
          // With nothing pending here, what was given is either still there or already counted.
          if (given && semctl(id, 0, GETVAL) === 0) assert.fail(`${count - taken} taken by calls reported as aborted`);
        }
        await nextImmediate();
      }
      await giving;
      assert.equal(semctl(id, 0, GETVAL), 0);
    }
    assert.ok(aborts >= 1000 && rejected > 0, `${aborts} aborts, ${rejected} calls aborted`);
    assert.ok(raced > 0, 'some operations were aborted while a waiter had them, and still reported done');
  });

  for (const when of ['at once', 'once they wait in the kernel']) {
    it(`rejects waits on a set removed ${when} with EIDRM`, async () => {
      const id = sem.set(2);
      const waits = [
        ...Array.from({ length: 8 }, (_, i) => semop(id, take(i % 2))),
        semop(id, [{ num: 0, op: -1, flags: SEM_UNDO }, { num: 1, op: 0 }]),
        semop(id, take(), 10000),
      ];
      // At once, the waiter threads may not have reached the kernel yet: still a removal. Equal
      // operations wait in one line, so the kernel sees four waits: one per line.
      if (when !== 'at once') await waitUntil(() => semctl(id, 0, GETNCNT) + semctl(id, 1, GETNCNT) === 4);
      semctl(id, 0, IPC_RMID);
      const results = await Promise.allSettled(waits);
      results.forEach((result, index) => {
        assert.equal(result.status, 'rejected');
        assertIpcError((result as PromiseRejectedResult).reason, 'EIDRM', index === waits.length - 1 ? 'semtimedop' : 'semop');
      });
    });
  }

  it('leaves the threadpool free: with 100 waits pending, fs and crypto still complete', async () => {
    const id = sem.set(100);
    const waits = Array.from({ length: 100 }, (_, i) => semop(id, take(i)));
    await waitUntil(() => Array.from({ length: 100 }, (_, i) => semctl(id, i, GETNCNT)).every((count) => count === 1));
    const work = await Promise.all([
      ...Array.from({ length: 8 }, () => readFile(__filename, 'utf8')),
      ...Array.from({ length: 4 }, () => promisify(pbkdf2)('secret', 'salt', 1000, 32, 'sha256')),
    ]);
    assert.equal(work.length, 12);
    assert.equal(semctl(id, 99, GETNCNT), 1, 'the waits were waiting all along');
    semctl(id, 0, SETALL, new Array<number>(100).fill(1));
    await Promise.all(waits);
    assert.deepEqual(semctl(id, 0, GETALL), new Array<number>(100).fill(0));
  });

  it('serves equal waits in one line, in call order, on one thread', async () => {
    const id = sem.set();
    const threads = () => readdirSync('/proc/self/task').length;
    const before = threads();
    const order: number[] = [];
    const waits = Array.from({ length: 1000 }, (_, i) => semop(id, take()).then(() => order.push(i)));
    await waitUntil(() => semctl(id, 0, GETNCNT) === 1);
    assert.ok(threads() - before <= 2, `${threads() - before} threads for 1000 equal waits`);
    for (let i = 0; i < 1000; i += 100) semopSync(id, [{ num: 0, op: 100 }]);
    await Promise.all(waits);
    assert.deepEqual(order, Array.from({ length: 1000 }, (_, i) => i));
    assert.equal(semctl(id, 0, GETVAL), 0);
  });

  it('rejects bad arguments with TypeError or RangeError naming them', async () => {
    const id = sem.set();
    await assert.rejects(semop(id, []), { name: 'TypeError', message: /'ops'/ });
    await assert.rejects(semop(id, [{ num: 0, op: 1e6 }]), { name: 'RangeError', message: /"ops\[0\].op"/ });
    await assert.rejects(semop(id, take(), -1), { name: 'RangeError', message: /"timeoutMs"/ });
    await assert.rejects(semop(id, take(), { signal: {} as AbortSignal }), { name: 'TypeError', message: /"options.signal"/ });
    await assert.rejects(semop(id, take(), 5, { timeout: -1 }), { name: 'RangeError', message: /"options.timeout"/ });
    await assert.rejects(semop(id, take(), { ref: 1 as unknown as boolean }), { name: 'TypeError', message: /"options.ref"/ });
    assert.equal(semctl(id, 0, GETNCNT), 0);
  });
});

describe('processes and workers with semaphore waits pending', function () {
  this.timeout(30000);
  const sem = useSemCleanup();

  it('stay alive while a wait is pending, as with a socket read, unless ref is false', async () => {
    const id = sem.set();
    await assertAliveWhileWaiting('sem', id, () => {
      semopSync(id, give());
    });
    assert.equal(semctl(id, 0, GETVAL), 0);
  });

  it('let process.exit() end a process with waits pending, or with a worker blocked in semop', async () => {
    const id = sem.set();
    // It ends with its own code: no crash, no hang on the twenty waiting threads.
    await assertExitWhileWaiting('sem', id);
    // Node joins worker threads on exit: one blocked in semop is interrupted, not waited for.
    await assertExitWhileWaiting('sem', id, 'exit-worker');
    // Calls that do not wait still work in an exit handler that runs after that.
    await assertExitWhileWaiting('sem', id, 'exit-worker-handler');
    assert.equal(semctl(id, 0, GETVAL), 1);
  });

  it('undo operations that completed for a process that exited before it could hear of them', async () => {
    const id = sem.set(2);
    // The child waits to take 1 from semaphore 0 with SEM_UNDO and add 2 to semaphore 1.
    const child = startPending('sem', 'exit-taken', id);
    const [line] = await once(child.stdout!, 'data');
    assert.equal(line, 'waiting\n');
    semopSync(id, give());
    const [code] = await once(child, 'exit');
    assert.equal(code, 3);
    // Undone with SEM_UNDO kept, so the kernel's own undo at exit does not give 1 back again.
    assert.deepEqual(semctl(id, 0, GETALL), [1, 0]);
  });

  it('work in worker_threads, and a worker terminated with waits pending ends cleanly', async () => {
    const id = sem.set(5);
    const worker = new Worker(fixture('sem-worker.js'), { workerData: { semid: id, mode: 'pending' } });
    const exited = once(worker, 'exit');
    const waiting = once(worker, 'message');
    semopSync(id, give(0));
    semopSync(id, take(1));
    await semop(id, give(2));
    await semop(id, take(3));
    await waiting;
    // Eight equal takes: one line, one wait in the kernel.
    await waitUntil(() => semctl(id, 4, GETNCNT) === 1);
    await worker.terminate();
    await exited;
    // The worker's waiter threads are gone: what is given now stays.
    assert.equal(semctl(id, 4, GETNCNT), 0);
    semopSync(id, give(4));
    await sleep(20);
    assert.equal(semctl(id, 4, GETVAL), 1);
  });

  it('undo an operation that completed for a worker terminated before it could hear so', async () => {
    const id = sem.set(5);
    const worker = new Worker(fixture('sem-worker.js'), { workerData: { semid: id, mode: 'busy' } });
    const exited = once(worker, 'exit');
    const messages: unknown[] = [];
    worker.on('message', (message) => messages.push(message));
    await waitUntil(() => semctl(id, 4, GETNCNT) === 1);
    semopSync(id, give(4));
    // The take happened on the addon's thread; the worker's own thread is too busy to hear it.
    await waitUntil(() => semctl(id, 4, GETNCNT) === 0);
    assert.equal(semctl(id, 4, GETVAL), 0);
    await worker.terminate();
    await exited;
    assert.deepEqual(messages, ['pending']);
    assert.equal(semctl(id, 4, GETVAL), 1, 'given back');
  });
});
