// SemaphoreSet and Mutex: creation that is safe against the initialisation race, values,
// acquire and release, and a lock between processes that a killed holder releases.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  GETALL, IPC_CREAT, IPC_EXCL, IPC_PRIVATE, IPC_STAT, Mutex, SemaphoreSet, semctl, semop, SEMVMX, SETALL, SETVAL, SharedMemory,
} from '../lib';
import { assertIpcError, assertRecent, randomKey, useSemCleanup, usePeers, useShmCleanup, waitUntil } from './helpers';

describe('SemaphoreSet', function () {
  this.timeout(30000);
  const sem = useSemCleanup();
  const peer = usePeers();
  const created = (set: SemaphoreSet): SemaphoreSet => {
    sem.track(set.id);
    return set;
  };

  it('creates a set (IPC_EXCL, mode 0600) initialised, and opens it by key', () => {
    const key = randomKey();
    const set = created(SemaphoreSet.create(key, { size: 3, initialValue: 2 }));
    assert.equal(set.key, key);
    assert.equal(set.size, 3);
    assert.equal(set.mode, 0o600);
    assert.equal(set.uid, process.getuid!());
    assert.equal(set.cuid, process.getuid!());
    assert.deepEqual(set.values, [2, 2, 2]);
    assertRecent(set.lastOpTime);
    assertRecent(set.changeTime);
    assert.throws(() => SemaphoreSet.create(key), (error) => assertIpcError(error, 'EEXIST', 'semget'));
    const opened = SemaphoreSet.open(key);
    assert.equal(opened.id, set.id);
    assert.equal(SemaphoreSet.create(key, { exclusive: false, size: 3 }).id, set.id);
    const listed = created(SemaphoreSet.create(IPC_PRIVATE, { initialValue: [0, 5, SEMVMX], mode: 0o640 }));
    assert.deepEqual(listed.values, [0, 5, SEMVMX]);
    assert.equal(listed.mode, 0o640);
    assertRecent(listed.lastOpTime);
  });

  it('gets and sets values, one or all', () => {
    const set = created(SemaphoreSet.create(IPC_PRIVATE, { size: 2 }));
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

  it('acquires and releases, waits for zero, and says why it did not', () => {
    const set = created(SemaphoreSet.create(IPC_PRIVATE, { initialValue: [3, 0] }));
    set.acquire();
    set.acquire(0, { delta: 2 });
    assert.equal(set.getValue(0), 0);
    assert.throws(() => set.acquire(0, { block: false }), (error) => assertIpcError(error, 'EAGAIN', 'semop'));
    const started = performance.now();
    assert.throws(() => set.acquire(0, { timeout: 30 }), { name: 'TimeoutError', code: 'ETIMEDOUT', syscall: 'semtimedop' });
    assert.ok(performance.now() - started >= 25, 'it waited');
    set.release(0, 2);
    set.release();
    assert.equal(set.getValue(0), 3);
    set.waitForZero(1);
    set.release(1);
    assert.throws(() => set.waitForZero(1, { block: false }), (error) => assertIpcError(error, 'EAGAIN', 'semop'));
    assert.throws(() => set.waitForZero(1, { timeout: 5 }), { name: 'TimeoutError' });
    set.op([{ num: 0, op: -3 }, { num: 1, op: -1 }]);
    assert.deepEqual(set.values, [0, 0]);
    assert.equal(set.lastPid(0), process.pid);
    assert.throws(() => set.acquire(2), (error) => assertIpcError(error, 'EFBIG', 'semop'));
    assert.throws(() => set.release(0, SEMVMX + 1), { name: 'RangeError', message: /"delta"/ });
    assert.throws(() => set.acquire(0, { delta: 0 }), { name: 'RangeError', message: /"options.delta"/ });
    assert.throws(() => set.acquire(-1), { name: 'RangeError', message: /"index"/ });
  });

  it('gives back what was acquired with undo when its process dies', async () => {
    const key = randomKey();
    const set = created(SemaphoreSet.create(key, { initialValue: 2 }));
    const other = peer();
    await other.request('semop', set.id, [{ num: 0, op: -1, flags: 0x1000 }]);
    await other.request('semop', set.id, [{ num: 0, op: -1 }]);
    assert.equal(set.getValue(), 0);
    await other.stop();
    assert.equal(set.getValue(), 1);
    // In this process: acquire with undo and release with undo cancel out.
    set.acquire(0, { undo: true });
    set.release(0, 1, { undo: true });
    assert.equal(set.getValue(), 1);
  });

  it('counts waiters and acquires without blocking the event loop', async () => {
    const set = created(SemaphoreSet.create(IPC_PRIVATE, { size: 2 }));
    const acquired = set.acquireAsync(0, { delta: 2 });
    const zero = (async () => {
      set.release(1);
      await set.waitForZeroAsync(1);
    })();
    const [a, b] = [peer(), peer()];
    const peerWaits = [a.request('semop', set.id, [{ num: 0, op: -1 }]), b.request('semop', set.id, [{ num: 1, op: 0 }])];
    await waitUntil(() => set.waitingForIncrease(0) === 2 && set.waitingForZero(1) === 2);
    assert.equal(set.waitingForIncrease(1), 0);
    set.release(0, 3);
    await acquired;
    await peerWaits[0];
    set.acquire(1);
    await zero;
    await peerWaits[1];
    await set.opAsync([{ num: 0, op: 1 }, { num: 1, op: 1 }]);
    assert.deepEqual(set.values, [1, 1]);
    await assert.rejects(set.acquireAsync(1, { delta: 2, timeout: 10 }), { name: 'TimeoutError' });
    assert.equal(set.waitingForIncrease(1), 0);
  });

  it('changes mode and owner, and is removed', async () => {
    const set = SemaphoreSet.create(IPC_PRIVATE);
    sem.track(set.id);
    set.mode = 0o640;
    set.gid = 65534;
    assert.equal(set.mode, 0o640);
    assert.equal(set.gid, 65534);
    const waiting = set.acquireAsync();
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
    assert.throws(() => SemaphoreSet.open(rawKey, { timeout: 20 }), { name: 'TimeoutError', code: 'ETIMEDOUT', message: /not initialised/ });
    assert.equal(SemaphoreSet.open(rawKey, { waitForInit: false }).id, raw);
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

  it('rejects bad options with TypeError or RangeError naming them', () => {
    assert.throws(() => SemaphoreSet.create(IPC_PRIVATE, { size: 0 }), { name: 'RangeError', message: /"options.size"/ });
    assert.throws(() => SemaphoreSet.create(IPC_PRIVATE, { size: 2 ** 31 - 1 }), { name: 'RangeError', message: /"options.size"/ });
    assert.throws(() => SemaphoreSet.create(IPC_PRIVATE, { size: 3, initialValue: [1, 2] }), { name: 'RangeError', message: /"options.size"/ });
    assert.throws(() => SemaphoreSet.create(IPC_PRIVATE, { initialValue: [] }), { name: 'TypeError', message: /'options.initialValue'/ });
    assert.throws(() => SemaphoreSet.create(IPC_PRIVATE, { initialValue: SEMVMX + 1 }), { name: 'RangeError', message: /"options.initialValue"/ });
    assert.throws(() => SemaphoreSet.create(IPC_PRIVATE, { initialValue: [0, -1] }), { name: 'RangeError', message: /"options.initialValue\[1\]"/ });
    assert.throws(() => SemaphoreSet.create(IPC_PRIVATE, { initialValue: [1, , 2] as number[] }), { name: 'TypeError', message: /"options.initialValue\[1\]"/ });
    assert.throws(() => SemaphoreSet.create(IPC_PRIVATE, { mode: 0o1000 }), { name: 'RangeError', message: /"options.mode"/ });
    assert.throws(() => SemaphoreSet.open(IPC_PRIVATE), { name: 'TypeError', message: /'key'/ });
    assert.throws(() => SemaphoreSet.open(randomKey(), { timeout: -1 }), { name: 'RangeError', message: /"options.timeout"/ });
    assert.throws(() => SemaphoreSet.open(randomKey()), (error) => assertIpcError(error, 'ENOENT', 'semget'));
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

  it('locks, tries, unlocks and runs a function under the lock', async () => {
    const key = randomKey();
    const mutex = created(Mutex.create(key));
    const other = Mutex.open(key);
    mutex.lock();
    assert.ok(mutex.held);
    assert.equal(other.tryLock(), false);
    assert.throws(() => mutex.lock(), { code: 'ERR_INVALID_STATE' });
    assert.throws(() => other.unlock(), { code: 'ERR_INVALID_STATE' });
    mutex.unlock();
    assert.equal(mutex.held, false);
    assert.equal(other.tryLock(), true);
    other.unlock();
    assert.equal(mutex.withLock(() => {
      assert.ok(mutex.held);
      return 42;
    }), 42);
    assert.throws(() => mutex.withLock(() => {
      throw new Error('inside');
    }), { message: 'inside' });
    assert.equal(mutex.held, false);
    assert.equal(mutex.semaphores.getValue(), 1);
    mutex.lock();
    assert.throws(() => other.lock({ timeout: 5 }), { name: 'TimeoutError', code: 'ETIMEDOUT' });
    assert.equal(other.held, false);
    mutex.unlock();
  });

  it('hands the lock between async waiters in turn, without blocking the event loop', async () => {
    const mutex = created(Mutex.create(IPC_PRIVATE));
    const order: string[] = [];
    const task = (name: string) => mutex.withLockAsync(async () => {
      order.push(`${name} in`);
      await sleep(5);
      order.push(`${name} out`);
      return name;
    });
    assert.deepEqual(await Promise.all([task('a'), task('b'), task('c')]), ['a', 'b', 'c']);
    for (let i = 0; i < order.length; i += 2) assert.equal(order[i + 1], order[i].replace('in', 'out'), order.join());
    await mutex.lockAsync();
    assert.throws(() => mutex.lock(), { code: 'ERR_INVALID_STATE' });
    mutex.unlock();
    assert.equal(mutex.semaphores.getValue(), 1);
  });

  it('keeps processes out of each other\'s critical sections', async () => {
    const key = randomKey();
    const shmKey = randomKey();
    created(Mutex.create(key));
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
    const mutex = created(Mutex.create(key));
    const holder = peer();
    await holder.request('lockMutex', key);
    assert.equal(mutex.tryLock(), false);
    const locked = mutex.lockAsync().then(() => performance.now());
    await waitUntil(() => mutex.semaphores.waitingForIncrease() === 1);
    const killed = performance.now();
    holder.child.kill('SIGKILL');
    const waited = (await locked) - killed;
    assert.ok(mutex.held);
    assert.ok(waited < 100, `the waiter got the lock ${waited.toFixed(1)} ms after the kill`);
    mutex.unlock();
    assert.equal(mutex.semaphores.getValue(), 1);
  });

  it('rejects bad arguments', () => {
    assert.throws(() => new Mutex({} as SemaphoreSet), { name: 'TypeError', message: /"semaphores"/ });
    const mutex = created(Mutex.create(IPC_PRIVATE));
    assert.throws(() => new Mutex(mutex.semaphores, 1.5), { name: 'RangeError', message: /"index"/ });
    assert.throws(() => mutex.withLock(5 as never), { name: 'TypeError', message: /"fn"/ });
  });
});
