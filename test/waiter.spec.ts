// The promise calls' waiting: lines that share a thread, the limit on threads, and settlements
// that neither depend on user code nor throw, whatever the process does around them.
import assert from 'node:assert/strict';
import { getEventListeners, once, setMaxListeners } from 'node:events';
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import {
  GETVAL, IPC_SET, IPC_STAT, msgctl, msgrcv as msgrcvSync, msgsnd as msgsndSync, semctl, semop as semopSync, SIG_BLOCK, SIG_SETMASK, sigprocmask,
} from '../lib';
import { msgrcv, msgsnd, semop, sigwaitinfo } from '../lib/promises';
import { openFifoWriter } from '../lib';
import { itAsRoot, useMsgCleanup, useSemCleanup, waitUntil } from './helpers';

const run = promisify(execFile);
const fixture = (name: string) => join(__dirname, 'fixtures', name);

function statusField(name: string): number {
  return Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))![1]);
}

const threads = () => readdirSync('/proc/self/task').length;
const mappings = () => readFileSync('/proc/self/maps', 'utf8').split('\n').length - 1;

/**
 * A pids cgroup (v1, or v2's root) that holds at most `limit` tasks, for a child started with
 * `sh -c 'echo $$ > <procs> && exec ...'`; undefined where this machine cannot make one.
 */
function pidsCgroup(limit: number): { procs: string; remove(): void } | undefined {
  const name = `kernel-ipc-test-${process.pid}`;
  for (const root of ['/sys/fs/cgroup/pids', '/sys/fs/cgroup']) {
    const dir = join(root, name);
    try {
      mkdirSync(dir);
    } catch {
      continue;
    }
    try {
      writeFileSync(join(dir, 'pids.max'), String(limit));
      return { procs: join(dir, 'cgroup.procs'), remove: () => rmdirSync(dir) };
    } catch {
      rmdirSync(dir);
    }
  }
  return undefined;
}

describe('promise calls that wait', function () {
  this.timeout(30000);
  const msg = useMsgCleanup();
  const sem = useSemCleanup();

  it('wait in one line on one thread when they wait for the same thing, served in call order', async () => {
    const id = msg.queue();
    const before = { threads: threads(), mappings: mappings(), vm: statusField('VmSize') };
    const controller = new AbortController();
    // One signal for them all, as intended: no leak to warn of.
    setMaxListeners(Infinity, controller.signal);
    const receives = Array.from({ length: 10000 }, () => msgrcv(id, 64, 0, 0, { signal: controller.signal }));
    await sleep(50);
    const grew = threads() - before.threads;
    assert.ok(grew <= 2, `${grew} threads for 10,000 receives on one queue`);
    // A thread each took two mappings (stack and guard page) and 256 KiB of address space.
    assert.ok(mappings() - before.mappings < 1000, `${mappings() - before.mappings} mappings more`);
    assert.ok(statusField('VmSize') - before.vm < 512 * 1024, `${statusField('VmSize') - before.vm} KiB more address space`);
    // A listener each made starting them quadratic: EventTarget walks its listeners to add one.
    assert.equal(getEventListeners(controller.signal, 'abort').length, 1);
    for (let i = 0; i < 100; i++) msgsndSync(id, 1, String(i));
    const first = await Promise.all(receives.slice(0, 100));
    assert.deepEqual(first.map(({ data }) => data.toString()), Array.from({ length: 100 }, (_, i) => String(i)));
    controller.abort();
    const rest = await Promise.allSettled(receives.slice(100));
    assert.ok(rest.every((result) => result.status === 'rejected' && result.reason.name === 'AbortError'));
    assert.equal(msgctl(id, IPC_STAT).qnum, 0, 'no message was taken by an aborted call');
  });

  it('leave no listener on a signal once the calls that shared it are over, and still hear it after', async () => {
    const id = msg.queue();
    const controller = new AbortController();
    const calls = [1, 2, 3].map(() => msgrcv(id, 64, 0, 0, { signal: controller.signal }));
    assert.equal(getEventListeners(controller.signal, 'abort').length, 1);
    for (let i = 0; i < 3; i++) msgsndSync(id, 1, 'x');
    await Promise.all(calls);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    const later = msgrcv(id, 64, 0, 0, { signal: controller.signal });
    await sleep(10);
    controller.abort();
    await assert.rejects(later, { name: 'AbortError' });
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });

  it('reject a call that would need a thread past the limit with EAGAIN, and go on working', async () => {
    const id = msg.queue();
    const controller = new AbortController();
    // One signal for them all, as intended: no leak to warn of.
    setMaxListeners(Infinity, controller.signal);
    // Each receive selects another type: each needs a thread of its own.
    const calls = Array.from({ length: 200 }, (_, i) => msgrcv(id, 64, i + 1, 0, { signal: controller.signal }));
    const settled = await Promise.race([Promise.allSettled(calls), sleep(200).then(() => undefined)]);
    assert.equal(settled, undefined, 'the calls that have threads are still waiting');
    controller.abort();
    const results = await Promise.allSettled(calls);
    const refused = results.filter((result) => result.status === 'rejected' && result.reason.code === 'EAGAIN');
    assert.ok(refused.length >= 200 - 128, `${refused.length} of 200 refused`);
    for (const { reason } of refused as PromiseRejectedResult[]) {
      assert.equal(reason.name, 'IpcError');
      assert.equal(reason.syscall, 'msgrcv');
      assert.match(reason.message, /^EAGAIN: 128 calls already wait on threads of kernel-ipc, the most there can be at once \(calls that wait for the same thing share one\), msgrcv id \d+$/);
      assert.equal(reason.id, id);
    }
    assert.equal(results.length - refused.length, results.filter((result) => result.status === 'rejected' && result.reason.name === 'AbortError').length);
    // The threads are free again.
    const later = msgrcv(id, 64, 7);
    msgsndSync(id, 7, 'later');
    assert.equal((await later).data.toString(), 'later');
  });

  itAsRoot('never take the last thread the system allows: a process in a small pids cgroup survives', 'a cgroup of its own needs root', async function () {
    // libuv aborts the process when it cannot start its threadpool: with a thread for each
    // waiting call, such a process died as soon as it touched fs or crypto.
    const cgroup = pidsCgroup(60);
    if (cgroup === undefined) this.skip();
    const id = msg.queue();
    try {
      const { stdout } = await run('sh', ['-c', `echo $$ > ${cgroup.procs} && exec "$0" "$@"`, process.execPath, fixture('many-waits.js'), String(id), '300']);
      const { outcomes, work } = JSON.parse(stdout) as { outcomes: Record<string, number>; work: number };
      assert.equal(work, 2, 'fs and crypto completed');
      const refused = Object.entries(outcomes).filter(([outcome]) => outcome.startsWith('EAGAIN'));
      assert.ok(refused.length > 0 && outcomes.AbortError > 0, JSON.stringify(outcomes));
      assert.equal(Object.values(outcomes).reduce((sum, count) => sum + count, 0), 300);
    } finally {
      cgroup.remove();
    }
  });

  it('leave no thread, stack or mapping behind once they ended and their threads went idle', async () => {
    // Without glibc's cache of stacks, a thread's stack goes when the thread is joined; one never
    // joined kept its stack (and guard page) for as long as the process lived.
    const { stdout } = await run(process.execPath, [fixture('idle-threads.js'), String(msg.queue())], {
      env: { ...process.env, GLIBC_TUNABLES: 'glibc.pthread.stack_cache_size=0:glibc.malloc.arena_max=1' },
    });
    const { before, waiting, after, glibc } = JSON.parse(stdout);
    assert.ok(waiting.threads - before.threads >= 100 && waiting.mappings - before.mappings >= 200, JSON.stringify({ before, waiting }));
    assert.ok(after.threads <= before.threads, JSON.stringify({ before, after }));
    // Before glibc 2.34 (the suite also runs on 2.31) there is no such tunable: joined threads'
    // stacks stay in glibc's cache, and the mappings cannot tell joined from leaked. (musl,
    // with no glibc version, keeps no cache.)
    const [major, minor] = String(glibc).split('.').map(Number);
    if (glibc === undefined || major > 2 || (major === 2 && minor >= 34)) {
      // The heap may have grown a little; 100 stacks left behind would be 200 mappings.
      assert.ok(after.mappings - before.mappings < 20, JSON.stringify({ before, after }));
    }
  });

  it('settle whatever the abort signal\'s own methods do, and keep what they took', async () => {
    const id = msg.queue();
    const signal = new AbortController().signal;
    signal.removeEventListener = () => {
      throw new Error('a listener cannot be removed');
    };
    signal.addEventListener = () => {
      throw new Error('a listener cannot be added');
    };
    const received = msgrcv(id, 64, 0, 0, { signal });
    await sleep(20);
    msgsndSync(id, 1, 'first');
    msgsndSync(id, 1, 'second');
    assert.equal((await received).data.toString(), 'first');
    assert.equal((await msgrcv(id, 64)).data.toString(), 'second', 'the first message was not put back behind it');

    const set = sem.set();
    const taken = semop(set, [{ num: 0, op: -1 }], { signal });
    await sleep(20);
    semopSync(set, [{ num: 0, op: 1 }]);
    await taken;
    assert.equal(semctl(set, 0, GETVAL), 0, 'the operation was not undone');
  });

  it('reject, never throw, on a signal that is not a real AbortSignal', async () => {
    const id = msg.queue();
    const set = sem.set();
    const signal = Object.create(AbortSignal.prototype) as AbortSignal;
    const calls: Array<() => Promise<unknown>> = [
      () => msgrcv(id, 64, 0, 0, { signal }),
      () => msgsnd(id, 1, 'x', 0, { signal }),
      () => semop(set, [{ num: 0, op: -1 }], { signal }),
      () => openFifoWriter('/nonexistent/fifo', { signal }),
      () => sigwaitinfo('SIGUSR2', { signal }),
    ];
    // sigwaitinfo checks its signals first: it waits only for blocked ones.
    const before = sigprocmask(SIG_BLOCK, 'SIGUSR2');
    try {
      for (const call of calls) {
        let promise: Promise<unknown> | undefined;
        assert.doesNotThrow(() => {
          promise = call();
        });
        await assert.rejects(promise!, {
          name: 'TypeError',
          code: 'ERR_INVALID_ARG_TYPE',
          message: /"options\.signal"/,
        });
      }
    } finally {
      sigprocmask(SIG_SETMASK, before);
    }
    assert.equal(msgctl(id, IPC_STAT).qnum, 0);
  });

  it('settle in call order within a line, also when the later call could complete at once', async () => {
    const id = msg.queue();
    const order: string[] = [];
    const first = msgrcv(id, 64).then(({ data }) => order.push(`first:${data}`));
    await sleep(20);
    msgsndSync(id, 1, 'M1');
    // The waiter takes M1 now, but this thread is busy and hears of it later.
    const until = Date.now() + 50;
    while (Date.now() < until);
    msgsndSync(id, 1, 'M2');
    const second = msgrcv(id, 64).then(({ data }) => order.push(`second:${data}`));
    await Promise.all([first, second]);
    assert.deepEqual(order, ['first:M1', 'second:M2']);
  });

  it('reject on abort though an earlier abort listener stops propagation', async () => {
    const id = msg.queue();
    const controller = new AbortController();
    controller.signal.addEventListener('abort', (event) => event.stopImmediatePropagation());
    const call = msgrcv(id, 64, 0, 0, { signal: controller.signal });
    await sleep(20);
    controller.abort();
    await assert.rejects(call, { name: 'AbortError' });
  });

  it('give a message back once its queue has room, when the worker that took it ends without hearing of it', async () => {
    const id = msg.queue();
    msgctl(id, IPC_SET, { qbytes: 16 });
    const worker = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      const { msgrcv } = require(${JSON.stringify(join(__dirname, '..', 'lib', 'promises'))});
      void msgrcv(workerData, 16);
      parentPort.once('message', () => { for (;;); });
      parentPort.postMessage('waiting');`, { eval: true, workerData: id });
    await once(worker, 'message');
    worker.postMessage('busy');
    await sleep(50);
    // Its waiter takes the message; the worker's JavaScript never hears of it.
    msgsndSync(id, 1, 'important');
    await waitUntil(() => msgctl(id, IPC_STAT).qnum === 0);
    // Meanwhile another sender fills the queue: giving back has to wait for room.
    msgsndSync(id, 2, Buffer.alloc(16, 'f'));
    await worker.terminate();
    assert.equal(msgrcvSync(id, 16).type, 2);
    await waitUntil(() => msgctl(id, IPC_STAT).qnum === 1);
    assert.deepEqual(msgrcvSync(id, 16), { type: 1, data: Buffer.from('important') });
  });

  it('settle, once, whatever builtins user code replaced before or after loading kernel-ipc', async () => {
    const id = msg.queue();
    const lib = JSON.stringify(join(__dirname, '..', 'lib'));
    const script = `
      'use strict';
      globalThis.clearTimeout = () => { throw new Error('replaced clearTimeout'); };
      const ipc = require(${lib});
      const promises = require(${lib} + '/promises');
      for (const name of ['get', 'set', 'delete', 'has']) Map.prototype[name] = () => { throw new Error('replaced Map'); };
      Promise.allSettled = () => { throw new Error('replaced allSettled'); };
      Promise.prototype.then = () => { throw new Error('replaced then'); };
      process.on('warning', () => {});
      (async () => {
        const received = promises.msgrcv(${id}, 16, 3, 0, { timeout: 5000 });
        ipc.msgsnd(${id}, 3, 'only once');
        const once = String((await received).data);
        const left = ipc.msgctl(${id}, ipc.IPC_STAT).qnum;
        ipc.msgctl(${id}, ipc.IPC_SET, { qbytes: 8 });
        ipc.msgsnd(${id}, 1, 'full0000');
        const sends = [promises.msgsnd(${id}, 2, 'a'), promises.msgsnd(${id}, 2, 'b')];
        ipc.msgrcv(${id}, 16, 1);
        for (const sent of sends) await sent;
        const order = [ipc.msgrcv(${id}, 16, 2), ipc.msgrcv(${id}, 16, 2)].map(({ data }) => String(data));
        process.stdout.write(JSON.stringify({ once, left, order }));
      })();`;
    const { stdout } = await run(process.execPath, ['-e', script], { timeout: 8000 });
    assert.deepEqual(JSON.parse(stdout), { once: 'only once', left: 0, order: ['a', 'b'] });
  });

  it('reject when exit is emitted by hand, and let the process end', async () => {
    const id = msg.queue();
    const script = `
      const promises = require(${JSON.stringify(join(__dirname, '..', 'lib', 'promises'))});
      promises.msgrcv(${id}, 64, 0, 0, { timeout: 60000 }).catch(({ code, syscall }) => console.log('rejected', code, syscall));
      setTimeout(() => process.emit('exit', 0), 50);`;
    const { stdout } = await run(process.execPath, ['-e', script], { timeout: 8000 });
    assert.equal(stdout, 'rejected EINTR msgrcv\n');
  });

  it('in exit listeners, fail with EINTR where they would wait, and work where they need not', async () => {
    const id = msg.queue();
    const { stdout } = await run(process.execPath, [fixture('exit-listener.js'), String(id)], { timeout: 8000 });
    assert.equal(stdout, 'receive before EINTR\nreceive after EINTR\nsend done\nreceive sent done\n');
  });
});
