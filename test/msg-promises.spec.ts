// kernel-ipc/promises msgsnd and msgrcv: waiting off the event loop and the threadpool, abort
// and timeout without losing messages, and how processes and workers with calls pending end.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { pbkdf2 } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as nextImmediate, setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, msgctl, msgrcv as msgrcvSync, msgsnd as msgsndSync } from '../lib';
import { msgrcv, msgsnd } from '../lib/promises';
import {
  assertAliveWhileWaiting, assertExitWhileWaiting, assertIpcError, randomlyAborted, startPending, useMsgCleanup, usePeers, useWaitSpy,
} from './helpers';

const fixture = (name: string) => join(__dirname, 'fixtures', name);
const run = promisify(execFile);

describe('kernel-ipc/promises msgsnd and msgrcv', function () {
  this.timeout(30000);
  const msg = useMsgCleanup();
  const waits = useWaitSpy('msgrcvAsync');
  const peer = usePeers();

  it('complete at once when they can, else when another process acts', async () => {
    const id = msg.queue();
    await msgsnd(id, 1, 'now');
    assert.deepEqual(await msgrcv(id, 64), { type: 1, data: Buffer.from('now') });
    const other = peer();
    const later = msgrcv(id, 64, 5);
    await other.request('msgsnd', id, 5, 'from the peer');
    assert.deepEqual(await later, { type: 5, data: Buffer.from('from the peer') });
    // The peer waits in msgrcv; this process's send completes its promise there.
    const reply = other.request<{ data: Uint8Array }>('msgrcvAsync', id, 64, 6);
    await sleep(20);
    await msgsnd(id, 6, 'to the peer');
    assert.equal(Buffer.from((await reply).data).toString(), 'to the peer');
  });

  it('wait for room on a full queue, and send in call order', async () => {
    const id = msg.queue();
    msgctl(id, IPC_SET, { qbytes: 4 });
    msgsndSync(id, 1, 'full');
    const sends = ['s1', 's2', 's3', 's4'].map((text) => msgsnd(id, 2, text));
    await sleep(20);
    assert.equal(msgctl(id, IPC_STAT).qnum, 1);
    assert.equal(msgrcvSync(id, 64).data.toString(), 'full');
    const received: string[] = [];
    while (received.length < 4) received.push((await msgrcv(id, 64, 2)).data.toString());
    await Promise.all(sends);
    assert.deepEqual(received, ['s1', 's2', 's3', 's4']);
  });

  it('take a detached buffer as no bytes while earlier sends wait, as when none do', async () => {
    const id = msg.queue();
    msgctl(id, IPC_SET, { qbytes: 4 });
    msgsndSync(id, 1, 'full');
    const waiting = msgsnd(id, 2, 'next');
    const detached = new Uint8Array(8);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    // Copied while it waits its turn: a detached buffer has nothing to copy, and must not throw.
    const empty = msgsnd(id, 3, detached);
    assert.ok(empty instanceof Promise);
    assert.equal(msgrcvSync(id, 64).data.toString(), 'full');
    await waiting;
    await empty;
    assert.equal(msgrcvSync(id, 64, 3).data.length, 0);
    assert.equal(msgrcvSync(id, 64, 2).data.toString(), 'next');
  });

  it('reject with AbortError or TimeoutError when stopped before the kernel acted', async () => {
    const id = msg.queue();
    const reason = new Error('stop');
    await assert.rejects(msgrcv(id, 64, 1, 0, { signal: AbortSignal.abort(reason) }), { name: 'AbortError', code: 'ABORT_ERR', cause: reason });
    const controller = new AbortController();
    const aborted = msgrcv(id, 64, 1, 0, { signal: controller.signal });
    await sleep(10);
    controller.abort();
    await assert.rejects(aborted, { name: 'AbortError', code: 'ABORT_ERR' });
    await assert.rejects(msgrcv(id, 64, 1, 0, { timeout: 10 }), { name: 'TimeoutError', code: 'ETIMEDOUT', syscall: 'msgrcv', id });
    msgctl(id, IPC_SET, { qbytes: 1 });
    msgsndSync(id, 1, 'x');
    await assert.rejects(msgsnd(id, 1, 'y', 0, { timeout: 10 }), { name: 'TimeoutError', syscall: 'msgsnd' });
    // Nothing was taken or left behind by the stopped calls.
    assert.equal(msgctl(id, IPC_STAT).qnum, 1);
    assert.deepEqual(await msgrcv(id, 64, 0, 0, { timeout: 1000 }), { type: 1, data: Buffer.from('x') });
  });

  it('deliver every message when thousands of aborts race a sender', async () => {
    const count = 5000;
    let aborts = 0;
    let rejected = 0;
    let raced = 0;
    // Whether an abort meets a call its waiter thread has is a matter of timing: on a loaded
    // machine one batch may not see it happen, so up to three do.
    for (let batch = 0; batch < 3 && (batch === 0 || raced === 0); batch++) {
      const id = msg.queue();
      // One message fits: the sender waits for each receive, so messages arrive while receives wait.
      msgctl(id, IPC_SET, { qbytes: 4 });
      const sender = peer();
      let sent = false;
      const sending = sender.request('sendNumbered', id, count).then(() => {
        sent = true;
      });
      const seen = new Uint16Array(count);
      let received = 0;
      while (received < count) {
        const call = randomlyAborted((signal) => msgrcv(id, 64, 1, 0, { signal }));
        const waited = waits.waited;
        if (call.aborting) aborts++;
        try {
          seen[(await call.result).data.readUInt32LE(0)]++;
          received++;
          // Aborted before its result came back from the waiter thread, and delivered anyway.
          if (waited && call.signal.aborted) raced++;
        } catch (error) {
          assert.equal((error as Error).name, 'AbortError');
          rejected++;
          // With nothing pending here, every message is either queued or already counted.
          if (sent && msgctl(id, IPC_STAT).qnum === 0) {
            assert.fail(`lost ${count - received} messages after ${rejected} aborted calls`);
          }
        }
        // The abort of a call that completed first must not reach a later one.
        await nextImmediate();
      }
      await sending;
      assert.deepEqual([...new Set(seen)], [1], 'every message exactly once');
      assert.equal(msgctl(id, IPC_STAT).qnum, 0);
    }
    assert.ok(aborts >= 2000 && rejected > 0, `${aborts} aborts, ${rejected} calls aborted`);
    assert.ok(raced > 0, 'some calls were aborted while a waiter had them, and still delivered');
  });

  for (const when of ['at once', 'once they wait in the kernel']) {
    it(`reject calls pending on a queue removed ${when} with EIDRM`, async () => {
      const id = msg.queue();
      const receives = Array.from({ length: 10 }, (_, i) => msgrcv(id, 64, i + 1));
      msgctl(id, IPC_SET, { qbytes: 1 });
      msgsndSync(id, 99, 'x');
      const send = msgsnd(id, 1, 'y');
      // At once, the waiter threads may not have reached the kernel yet: still a removal.
      if (when !== 'at once') await sleep(20);
      msgctl(id, IPC_RMID);
      const results = await Promise.allSettled([...receives, send]);
      results.forEach((result, index) => {
        assert.equal(result.status, 'rejected');
        assertIpcError((result as PromiseRejectedResult).reason, 'EIDRM', index < receives.length ? 'msgrcv' : 'msgsnd');
      });
    });
  }

  it('leave the threadpool free: with 100 receives pending, fs and crypto still complete', async () => {
    const id = msg.queue();
    // Each selects other messages, so each waits on a thread of the addon's own, not in libuv's four.
    const receives = Array.from({ length: 100 }, (_, i) => msgrcv(id, 64, i + 1));
    await sleep(50);
    const work = await Promise.all([
      ...Array.from({ length: 8 }, () => readFile(__filename, 'utf8')),
      ...Array.from({ length: 4 }, () => promisify(pbkdf2)('secret', 'salt', 1000, 32, 'sha256')),
    ]);
    assert.equal(work.length, 12);
    // The receives were waiting all along.
    assert.equal(msgctl(id, IPC_STAT).lrpid, 0);
    for (let type = 100; type >= 1; type--) msgsndSync(id, type, String(type));
    const messages = await Promise.all(receives);
    assert.deepEqual(messages.map(({ type, data }) => [type, data.toString()]), messages.map((_, i) => [i + 1, String(i + 1)]));
  });

  it('reject bad arguments with TypeError or RangeError naming them', async () => {
    const id = msg.queue();
    await assert.rejects(msgrcv(id, -1), { name: 'RangeError', message: /"maxBytes"/ });
    await assert.rejects(msgsnd(id, 0, 'x'), { name: 'RangeError', message: /"type"/ });
    await assert.rejects(msgrcv(id, 1, 0, 0, { signal: {} as AbortSignal }), { name: 'TypeError', message: /"options.signal"/ });
    await assert.rejects(msgrcv(id, 1, 0, 0, { timeout: -1 }), { name: 'RangeError', message: /"options.timeout"/ });
    await assert.rejects(msgrcv(id, 1, 0, 0, { ref: 1 as unknown as boolean }), { name: 'TypeError', message: /"options.ref"/ });
    await assert.rejects(msgrcv(id, 1, 0, IPC_NOWAIT), { code: 'ENOMSG', syscall: 'msgrcv' });
  });
});

describe('processes and workers with message-queue calls pending', function () {
  this.timeout(30000);
  const msg = useMsgCleanup();

  it('stay alive while a call is pending, as with a socket read, unless ref is false', async () => {
    const id = msg.queue();
    await assertAliveWhileWaiting('msg', id, () => msgsndSync(id, 1, 'hello'));
    assert.equal(msgctl(id, IPC_STAT).qnum, 0);
  });

  it('let process.exit() end a process with calls pending, or with a worker blocked in msgrcv', async () => {
    const id = msg.queue();
    msgctl(id, IPC_SET, { qbytes: 1 });
    msgsndSync(id, 200, 'x');
    await assertExitWhileWaiting('msg', id);
    assert.equal(msgctl(id, IPC_STAT).qnum, 1);
    // Node joins worker threads on exit: one blocked in msgrcv is interrupted, not waited for.
    const empty = msg.queue();
    await assertExitWhileWaiting('msg', empty, 'exit-worker');
    // Calls that do not wait still work in an exit handler that runs after that.
    await assertExitWhileWaiting('msg', empty, 'exit-worker-handler');
    assert.deepEqual(msgrcvSync(empty, 64, 0, IPC_NOWAIT), { type: 7, data: Buffer.from('from exit') });
    assert.equal(msgctl(empty, IPC_STAT).qnum, 0);
  });

  it('give back a message taken for a process that exited before it could hear of it', async () => {
    const id = msg.queue();
    const child = startPending('msg', 'exit-taken', id);
    const [line] = await once(child.stdout!, 'data');
    assert.equal(line, 'waiting\n');
    msgsndSync(id, 1, 'taken');
    const [code] = await once(child, 'exit');
    assert.equal(code, 3);
    assert.deepEqual(msgrcvSync(id, 64, 0, IPC_NOWAIT), { type: 1, data: Buffer.from('taken') });
  });

  it('survive workers terminated in the middle of calls that throw', async () => {
    const { stdout } = await run(process.execPath, [fixture('msg-terminate.js'), '100']);
    assert.equal(stdout, 'terminated 100\n');
  });

  it('work in worker_threads, and a worker terminated with calls pending ends cleanly', async () => {
    const id = msg.queue();
    const worker = new Worker(fixture('msg-worker.js'), { workerData: { msqid: id } });
    // Listening from the start: an event emitted before anyone listens is gone.
    const exited = once(worker, 'exit');
    const waiting = once(worker, 'message');
    msgsndSync(id, 1, 'one');
    assert.equal(msgrcvSync(id, 64, 2).data.toString(), 'sync one');
    await msgsnd(id, 3, 'two');
    assert.equal((await msgrcv(id, 64, 4)).data.toString(), 'async two');
    await waiting;
    await worker.terminate();
    await exited;
    // The worker's waiter threads are gone, and nothing it left pending took a message.
    msgsndSync(id, 100, 'after');
    await nextImmediate();
    assert.equal(msgctl(id, IPC_STAT).qnum, 1);
  });
});
