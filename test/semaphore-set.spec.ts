// SemaphoreSet and Mutex: creation that is safe against the initialisation race, values,
// acquire and release, and a lock between processes that a killed holder releases.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  GETALL, IPC_CREAT, IPC_EXCL, IPC_PRIVATE, IPC_STAT, Mutex, MutexGuard, SemaphoreSet, semctl, semop, SEMVMX, SETALL, SETVAL, SharedMemory,
} from '../lib';
import { packageRoot } from '../lib/native';
import { assertIpcError, assertRecent, randomKey, useSemCleanup, usePeers, useShmCleanup, waitUntil } from './helpers';

describe('SemaphoreSet', function () {
  this.timeout(30000);
  const sem = useSemCleanup();
  const peer = usePeers();
  const created = (set: SemaphoreSet): SemaphoreSet => {
    sem.track(set.id);
    return set;
  };

  it('creates a set (IPC_EXCL, mode 0600) initialised, and opens it by key', async () => {
    const key = randomKey();
    const making = SemaphoreSet.create(key, { size: 3, initialValue: 2 });
    assert.ok(making instanceof Promise);
    const set = created(await making);
    assert.equal(set.key, key);
    assert.equal(set.size, 3);
    assert.equal(set.mode, 0o600);
    assert.equal(set.uid, process.getuid!());
    assert.equal(set.cuid, process.getuid!());
    assert.deepEqual(set.values, [2, 2, 2]);
    assertRecent(set.lastOpTime);
    assertRecent(set.changeTime);
    await assert.rejects(SemaphoreSet.create(key), (error) => assertIpcError(error, 'EEXIST', 'semget'));
    assert.throws(() => SemaphoreSet.createSync(key), (error) => assertIpcError(error, 'EEXIST', 'semget'));
    assert.equal((await SemaphoreSet.open(key)).id, set.id);
    assert.equal(SemaphoreSet.openSync(key).id, set.id);
    assert.equal((await SemaphoreSet.create(key, { exclusive: false, size: 3 })).id, set.id);
    assert.equal(SemaphoreSet.createSync(key, { exclusive: false, size: 3 }).id, set.id);
    const listed = created(SemaphoreSet.createSync(IPC_PRIVATE, { initialValue: [0, 5, SEMVMX], mode: 0o640 }));
    assert.deepEqual(listed.values, [0, 5, SEMVMX]);
    assert.equal(listed.mode, 0o640);
    assertRecent(listed.lastOpTime);
  });

  it('gets and sets values, one or all', () => {
    const set = created(SemaphoreSet.createSync(IPC_PRIVATE, { size: 2 }));
    set.setValue(1, 9);
    assert.equal(set.getValue(1), 9);
    assert.equal(set.getValue(), 0);
    set.values = [4, 5];
    assert.deepEqual(set.values, [4, 5]);
    assert.throws(() => set.setValue(0, SEMVMX + 1), { name: 'RangeError', message: /"value"/ });
    assert.throws(() => (set.values = [1, -1]), { name: 'RangeError', message: /"values\[1\]"/ });
    assert.throws(() => (set.values = [1]), (error) => assertIpcError(error, 'EINVAL', 'semctl'));
    assert.throws(() => set.getValue(2), (error) => assertIpcError(error, 'EINVAL', 'semctl'));
  });

  it('acquires and releases, waits for zero, and says why it did not', async () => {
    const set = created(SemaphoreSet.createSync(IPC_PRIVATE, { initialValue: [3, 0] }));
    assert.equal(await set.acquire(), undefined);
    await set.acquire(0, { delta: 2 });
    assert.equal(set.getValue(0), 0);
    await assert.rejects(set.acquire(0, { block: false }), (error) => assertIpcError(error, 'EAGAIN', 'semop'));
    await assert.rejects(set.acquire(0, { timeout: 30 }), { name: 'TimeoutError', code: 'ETIMEDOUT', syscall: 'semop', id: set.id, message: `semop id ${set.id} timed out after 30 ms` });
    set.release(0, 2);
    set.release();
    assert.equal(set.getValue(0), 3);
    await set.waitForZero(1);
    set.release(1);
    await assert.rejects(set.waitForZero(1, { block: false }), (error) => assertIpcError(error, 'EAGAIN', 'semop'));
    await assert.rejects(set.waitForZero(1, { timeout: 5 }), { name: 'TimeoutError' });
    await set.op([{ num: 0, op: -3 }, { num: 1, op: -1 }]);
    assert.deepEqual(set.values, [0, 0]);
    assert.equal(set.lastPid(0), process.pid);
    const beyond = await set.acquire(2).catch((error) => error);
    assertIpcError(beyond, 'EFBIG', 'semop');
    assert.equal(beyond.message, `EFBIG: file too large, semop id ${set.id}`);
    assert.throws(() => set.release(0, SEMVMX + 1), { name: 'RangeError', message: /"delta"/ });
    // Argument mistakes reject; they never throw.
    const wrong = set.acquire(0, { delta: 0 });
    await assert.rejects(wrong, { name: 'RangeError', message: /"options.delta"/ });
    await assert.rejects(set.acquire(-1), { name: 'RangeError', message: /"index"/ });
    await assert.rejects(set.waitForZero(0, { block: 1 as unknown as boolean }), { name: 'TypeError', message: /"options.block"/ });
  });

  it('acquireSync, waitForZeroSync and opSync do the same on the calling thread', () => {
    const set = created(SemaphoreSet.createSync(IPC_PRIVATE, { initialValue: [3, 0] }));
    set.acquireSync();
    set.acquireSync(0, { delta: 2 });
    assert.equal(set.getValue(0), 0);
    assert.throws(() => set.acquireSync(0, { block: false }), (error) => assertIpcError(error, 'EAGAIN', 'semop'));
    const started = performance.now();
    assert.throws(() => set.acquireSync(0, { timeout: 30 }), { name: 'TimeoutError', code: 'ETIMEDOUT', syscall: 'semtimedop', id: set.id });
    assert.ok(performance.now() - started >= 25, 'it waited');
    set.release(0, 3);
    set.waitForZeroSync(1);
    set.release(1);
    assert.throws(() => set.waitForZeroSync(1, { block: false }), (error) => assertIpcError(error, 'EAGAIN', 'semop'));
    assert.throws(() => set.waitForZeroSync(1, { timeout: 5 }), { name: 'TimeoutError' });
    set.opSync([{ num: 0, op: -3 }, { num: 1, op: -1 }]);
    assert.deepEqual(set.values, [0, 0]);
    assert.throws(() => set.acquireSync(2), (error) => assertIpcError(error, 'EFBIG', 'semop') && (error as { id?: number }).id === set.id);
    assert.throws(() => set.acquireSync(0, { delta: 0 }), { name: 'RangeError', message: /"options.delta"/ });
    assert.throws(() => set.acquireSync(-1), { name: 'RangeError', message: /"index"/ });
  });

  it('gives back what was acquired with undo when its process dies', async () => {
    const key = randomKey();
    const set = created(await SemaphoreSet.create(key, { initialValue: 2 }));
    const other = peer();
    await other.request('semop', set.id, [{ num: 0, op: -1, flags: 0x1000 }]);
    await other.request('semop', set.id, [{ num: 0, op: -1 }]);
    assert.equal(set.getValue(), 0);
    await other.stop();
    assert.equal(set.getValue(), 1);
    // In this process: acquire with undo and release with undo cancel out.
    await set.acquire(0, { undo: true });
    set.release(0, 1, { undo: true });
    set.acquireSync(0, { undo: true });
    set.release(0, 1, { undo: true });
    assert.equal(set.getValue(), 1);
  });

  it('counts waiters and acquires without blocking the event loop', async () => {
    const set = created(await SemaphoreSet.create(IPC_PRIVATE, { size: 2 }));
    const acquired = set.acquire(0, { delta: 2 });
    const zero = (async () => {
      set.release(1);
      await set.waitForZero(1);
    })();
    const [a, b] = [peer(), peer()];
    const peerWaits = [a.request('semop', set.id, [{ num: 0, op: -1 }]), b.request('semop', set.id, [{ num: 1, op: 0 }])];
    await waitUntil(() => set.waitingForIncrease(0) === 2 && set.waitingForZero(1) === 2);
    assert.equal(set.waitingForIncrease(1), 0);
    set.release(0, 3);
    await acquired;
    await peerWaits[0];
    set.acquireSync(1);
    await zero;
    await peerWaits[1];
    await set.op([{ num: 0, op: 1 }, { num: 1, op: 1 }]);
    assert.deepEqual(set.values, [1, 1]);
    await assert.rejects(set.acquire(1, { delta: 2, timeout: 10 }), { name: 'TimeoutError' });
    assert.equal(set.waitingForIncrease(1), 0);
  });

  it('changes mode and owner, and is removed', async () => {
    const set = SemaphoreSet.createSync(IPC_PRIVATE);
    sem.track(set.id);
    set.mode = 0o640;
    set.gid = 65534;
    assert.equal(set.mode, 0o640);
    assert.equal(set.gid, 65534);
    const waiting = set.acquire();
    await waitUntil(() => set.waitingForIncrease() === 1);
    set.remove();
    await assert.rejects(waiting, (error) => assertIpcError(error, 'EIDRM', 'semop'));
    assert.throws(() => set.values, (error) => assertIpcError(error, 'EINVAL', 'semctl'));
  });

  it('makes openers wait until the creator has initialised the set (Stevens)', async () => {
    const key = randomKey();
    // A creator that is slow to initialise: made with the mirror, values set later.
    const id = sem.semget(key, 2, IPC_CREAT | IPC_EXCL | 0o600);
    const openers = Array.from({ length: 8 }, () => peer());
    await Promise.all(openers.map((opener) => opener.request('semget', key, 0, 0)));
    const opened = openers.map((opener) => opener.request<{ id: number; values: number[] }>('openSemaphoreSet', key));
    await sleep(200);
    assert.equal(semctl(id, 0, IPC_STAT).otime, 0, 'no opener operated on it');
    semctl(id, 0, SETALL, [7, 9]);
    // The creator's first semop, which sets otime: the set is ready.
    semop(id, [{ num: 0, op: -1 }, { num: 0, op: 1 }]);
    for (const result of await Promise.all(opened)) assert.deepEqual(result, { id, values: [7, 9] });
    // A set no semop has touched cannot be opened, unless asked not to wait.
    const rawKey = randomKey();
    const raw = sem.semget(rawKey, 1, IPC_CREAT | IPC_EXCL | 0o600);
    const notInitialised = { name: 'TimeoutError', code: 'ETIMEDOUT', message: /not initialised/, id: raw };
    assert.throws(() => SemaphoreSet.openSync(rawKey, { timeout: 20 }), notInitialised);
    await assert.rejects(SemaphoreSet.open(rawKey, { timeout: 20 }), notInitialised);
    assert.equal(SemaphoreSet.openSync(rawKey, { waitForInit: false }).id, raw);
    assert.equal((await SemaphoreSet.open(rawKey, { waitForInit: false })).id, raw);
    // Waiting, open keeps the event loop running, and can be aborted.
    const controller = new AbortController();
    let ticks = 0;
    const ticker = setInterval(() => ++ticks === 5 && controller.abort(), 1);
    await assert.rejects(SemaphoreSet.open(rawKey, { signal: controller.signal }), { name: 'AbortError' });
    clearInterval(ticker);
    assert.ok(ticks >= 5);
  });

  it('makes creators that find the set already made wait for its initialisation', async () => {
    const key = randomKey();
    const creators = Array.from({ length: 8 }, () => peer());
    await Promise.all(creators.map((creator) => creator.request('ping')));
    // A slow creator, as before; the others create with exclusive: false and at once add 1,
    // which the initialisation would overwrite if they did not wait for it.
    const id = sem.semget(key, 1, IPC_CREAT | IPC_EXCL | 0o600);
    const ids = creators.map((creator) => creator.request<number>('createAndRelease', key, { initialValue: 100 }));
    await sleep(200);
    semctl(id, 0, SETVAL, 100);
    semop(id, [{ num: 0, op: 1 }, { num: 0, op: -1 }]);
    assert.deepEqual(await Promise.all(ids), creators.map(() => id));
    assert.deepEqual(semctl(id, 0, GETALL), [108]);
  });

  it('rejects bad options with TypeError or RangeError naming them', async () => {
    const cases: Array<[options: Parameters<typeof SemaphoreSet.createSync>[1], expected: { name: string; message: RegExp }]> = [
      [{ size: 0 }, { name: 'RangeError', message: /"options.size"/ }],
      [{ size: 2 ** 31 - 1 }, { name: 'RangeError', message: /"options.size"/ }],
      [{ size: 3, initialValue: [1, 2] }, { name: 'RangeError', message: /"options.size"/ }],
      [{ initialValue: [] }, { name: 'TypeError', message: /'options.initialValue'/ }],
      [{ initialValue: SEMVMX + 1 }, { name: 'RangeError', message: /"options.initialValue"/ }],
      [{ initialValue: [0, -1] }, { name: 'RangeError', message: /"options.initialValue\[1\]"/ }],
      [{ initialValue: [1, , 2] as number[] }, { name: 'TypeError', message: /"options.initialValue\[1\]"/ }],
      [{ mode: 0o1000 }, { name: 'RangeError', message: /"options.mode"/ }],
      [{ timeout: -1 }, { name: 'RangeError', message: /"options.timeout"/ }],
    ];
    for (const [options, expected] of cases) {
      assert.throws(() => SemaphoreSet.createSync(IPC_PRIVATE, options), expected);
      await assert.rejects(SemaphoreSet.create(IPC_PRIVATE, options), expected);
    }
    assert.throws(() => SemaphoreSet.openSync(IPC_PRIVATE), { name: 'TypeError', message: /'key'/ });
    await assert.rejects(SemaphoreSet.open(IPC_PRIVATE), { name: 'TypeError', message: /'key'/ });
    await assert.rejects(SemaphoreSet.open(randomKey(), { signal: {} as AbortSignal }), { name: 'TypeError', message: /"options.signal"/ });
    // Aborted before it began, create makes nothing.
    const key = randomKey();
    try {
      await assert.rejects(SemaphoreSet.create(key, { signal: AbortSignal.abort() }), { name: 'AbortError' });
      await assert.rejects(Mutex.create(key, { signal: AbortSignal.abort() }), { name: 'AbortError' });
      assert.throws(() => SemaphoreSet.openSync(key), (error) => assertIpcError(error, 'ENOENT', 'semget'));
    } finally {
      // Made after all (the failure this looks for): removed after the test.
      try {
        sem.semget(key, 0, 0);
      } catch {
        // Nothing made.
      }
    }
    assert.throws(() => SemaphoreSet.openSync(randomKey()), (error) => assertIpcError(error, 'ENOENT', 'semget'));
    await assert.rejects(SemaphoreSet.open(randomKey()), (error) => assertIpcError(error, 'ENOENT', 'semget'));
  });
});

describe('Mutex', function () {
  this.timeout(30000);
  const sem = useSemCleanup();
  const shm = useShmCleanup();
  const peer = usePeers();
  const created = (mutex: Mutex): Mutex => {
    sem.track(mutex.semaphores.id);
    return mutex;
  };

  it('locks, tries, unlocks and runs a function under the lock, blocking the thread', async () => {
    const key = randomKey();
    const mutex = created(Mutex.createSync(key));
    const other = Mutex.openSync(key);
    const guard = mutex.lockSync();
    assert.ok(guard instanceof MutexGuard);
    assert.ok(mutex.held);
    assert.equal(other.tryLock(), undefined);
    assert.throws(() => mutex.lockSync(), { code: 'ERR_INVALID_STATE' });
    assert.throws(() => other.unlock(), { code: 'ERR_INVALID_STATE' });
    mutex.unlock();
    assert.equal(mutex.held, false);
    assert.equal(guard.locked, false);
    // A guard whose lock is gone does nothing, even once the lock is taken again.
    const tried = other.tryLock();
    assert.ok(tried instanceof MutexGuard && tried.locked);
    guard.unlock();
    assert.ok(other.held);
    tried.unlock();
    assert.equal(other.held, false);
    assert.equal(mutex.withLockSync(() => {
      assert.ok(mutex.held);
      return 42;
    }), 42);
    assert.throws(() => mutex.withLockSync(() => {
      throw new Error('inside');
    }), { message: 'inside' });
    assert.equal(mutex.held, false);
    assert.equal(mutex.semaphores.getValue(), 1);
    mutex.lockSync();
    assert.throws(() => other.lockSync({ timeout: 5 }), { name: 'TimeoutError', code: 'ETIMEDOUT' });
    assert.equal(other.held, false);
    mutex.unlock();
  });

  it('is disposable: the guard and the Mutex unlock at the end of a using block', () => {
    const mutex = created(Mutex.createSync());
    {
      const guard = mutex.lockSync();
      try {
        assert.ok(mutex.held);
      } finally {
        guard[Symbol.dispose]();
      }
    }
    assert.equal(mutex.held, false);
    mutex.lockSync();
    mutex[Symbol.dispose]();
    assert.equal(mutex.held, false);
    assert.equal(mutex.semaphores.getValue(), 1);
    // Disposing twice, or a Mutex that holds nothing, is fine.
    mutex[Symbol.dispose]();
    assert.equal(mutex.semaphores.getValue(), 1);
  });

  it('works with using and await using, where the syntax exists (Node 24)', function () {
    try {
      new Function('{ using nothing = null; }');
    } catch {
      this.skip();
    }
    const script = `
      const { Mutex, SharedMemory } = require('kernel-ipc');
      (async () => {
        const mutex = await Mutex.create();
        const seen = {};
        try {
          {
            await using guard = await mutex.lock();
            seen.heldInside = mutex.held;
          }
          seen.heldAfterAwaitUsing = mutex.held;
          {
            using guard = mutex.lockSync();
            guard.unlock();
          }
          seen.heldAfterUsing = mutex.held;
          let segment;
          {
            using shm = SharedMemory.create(null, 16);
            segment = shm;
            shm.remove();
          }
          seen.attachedAfterUsing = segment.attached;
        } finally {
          mutex.remove();
        }
        process.stdout.write(JSON.stringify(seen));
      })();`;
    const seen = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: packageRoot, encoding: 'utf8' }));
    assert.deepEqual(seen, { heldInside: true, heldAfterAwaitUsing: false, heldAfterUsing: false, attachedAfterUsing: false });
  });

  it('hands the lock between async waiters in turn, without blocking the event loop', async () => {
    const mutex = created(await Mutex.create(IPC_PRIVATE));
    const order: string[] = [];
    const task = (name: string) => mutex.withLock(async () => {
      order.push(`${name} in`);
      await sleep(5);
      order.push(`${name} out`);
      return name;
    });
    assert.deepEqual(await Promise.all([task('a'), task('b'), task('c')]), ['a', 'b', 'c']);
    for (let i = 0; i < order.length; i += 2) assert.equal(order[i + 1], order[i].replace('in', 'out'), order.join());
    const guard = await mutex.lock();
    assert.ok(guard.locked);
    assert.throws(() => mutex.lockSync(), { code: 'ERR_INVALID_STATE' });
    guard.unlock();
    assert.equal(mutex.held, false);
    assert.equal(mutex.semaphores.getValue(), 1);
    await assert.rejects(mutex.withLock(async () => {
      throw new Error('inside');
    }), { message: 'inside' });
    assert.equal(mutex.semaphores.getValue(), 1);
  });

  it('keeps processes out of each other\'s critical sections', async () => {
    const key = randomKey();
    const shmKey = randomKey();
    created(await Mutex.create(key));
    const memory = SharedMemory.create(shmKey, 4);
    shm.track(memory.id);
    shm.keep(memory.buffer);
    const rounds = 300;
    const counters = [peer(), peer(), peer(), peer()];
    await Promise.all(counters.map((counter) => counter.request('countUnderLock', key, shmKey, rounds)));
    assert.equal(memory.buffer.readUInt32LE(0), 4 * rounds);
  });

  it('is released by the kernel when its holder is killed: a waiter gets it within 100 ms', async () => {
    const key = randomKey();
    const mutex = created(await Mutex.create(key));
    const holder = peer();
    await holder.request('lockMutex', key);
    assert.equal(mutex.tryLock(), undefined);
    const locked = mutex.lock().then(() => performance.now());
    await waitUntil(() => mutex.semaphores.waitingForIncrease() === 1);
    const killed = performance.now();
    holder.child.kill('SIGKILL');
    const waited = (await locked) - killed;
    assert.ok(mutex.held);
    assert.ok(waited < 100, `the waiter got the lock ${waited.toFixed(1)} ms after the kill`);
    mutex.unlock();
    assert.equal(mutex.semaphores.getValue(), 1);
  });

  it('rejects bad arguments', async () => {
    assert.throws(() => new Mutex({} as SemaphoreSet), { name: 'TypeError', message: /"semaphores"/ });
    const mutex = created(Mutex.createSync(IPC_PRIVATE));
    assert.throws(() => new Mutex(mutex.semaphores, 1.5), { name: 'RangeError', message: /"index"/ });
    assert.throws(() => mutex.withLockSync(5 as never), { name: 'TypeError', message: /"fn"/ });
    await assert.rejects(mutex.withLock(5 as never), { name: 'TypeError', message: /"fn"/ });
    await assert.rejects(mutex.lock({ timeout: -1 }), { name: 'RangeError', message: /"options.timeout"/ });
    assert.equal(mutex.held, false);
    // A lock takes one, whatever else the options say.
    const guard = await mutex.lock({ delta: 2, block: false } as never);
    assert.equal(mutex.semaphores.getValue(), 0);
    guard.unlock();
  });
});
