// What JavaScript can do to an attachment without crashing the process: GC, read-only
// mappings, huge segments, worker threads, and garbage into every export.
import assert from 'node:assert/strict';
import { constants as bufferConstants } from 'node:buffer';
import { once } from 'node:events';
import { join } from 'node:path';
import { setImmediate as nextImmediate } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import * as kernelIpc from '../lib';
import {
  IPC_CREAT, IPC_EXCL, IPC_PRIVATE, IPC_RMID, IPC_STAT, ReadOnlyBuffer, SharedMemory, shmat, shmctl, shmdt,
  shmget, SHM_NORESERVE, SHM_RDONLY,
} from '../lib';
import { assertErrno, collectGarbage, randomKey, useShmCleanup } from './helpers';

const nattch = (id: number) => shmctl(id, IPC_STAT).nattch;

describe('attachments and garbage collection', function () {
  this.timeout(60000);
  const ipc = useShmCleanup();

  it('detaches 20,000 dropped attachments as GC collects them', async () => {
    const id = ipc.shmget(IPC_PRIVATE, 4096, 0o600);
    const live = ipc.shmat(id);
    live.write('alive');
    let most = 0;
    for (let i = 1; i <= 20000; i++) {
      shmat(id);
      if (i % 1000 === 0) {
        most = Math.max(most, nattch(id));
        await collectGarbage();
      }
    }
    await collectGarbage();
    assert.ok(most <= 1001, `at most one round of dropped attachments at a time, saw ${most}`);
    assert.equal(nattch(id), 1, 'only the live attachment remains');
    assert.equal(live.toString('utf8', 0, 5), 'alive');
  });

  it('does not let dropped attachments pile up even without explicit GC', async () => {
    const id = ipc.shmget(IPC_PRIVATE, 65536, 0o600);
    let most = 0;
    for (let i = 1; i <= 20000; i++) {
      shmat(id);
      if (i % 100 === 0) {
        await nextImmediate();
        most = Math.max(most, nattch(id));
      }
    }
    assert.ok(most < 5000, `V8's own collections keep them bounded, saw ${most} of 20000`);
  });

  it('finalizes each attachment exactly once, never one that reused its address', async () => {
    const id = ipc.shmget(IPC_PRIVATE, 8192, 0o600);
    // Explicitly detached attachments whose finalizers run later, interleaved with
    // dropped ones, so addresses are freed and reused while finalizers are pending.
    for (let i = 0; i < 2000; i++) {
      shmdt(shmat(id));
      shmat(id);
    }
    const live = Array.from({ length: 100 }, (_, i) => {
      const buffer = ipc.shmat(id);
      buffer.writeUInt32LE(i, i * 4);
      return buffer;
    });
    await collectGarbage();
    // A second detach of a reused address would have unmapped one of these.
    assert.equal(nattch(id), 100);
    live.forEach((buffer, i) => assert.equal(buffer.readUInt32LE(i * 4), i));
  });
});

describe('read-only attachments', () => {
  const ipc = useShmCleanup();

  it('give a zero-copy ReadOnlyBuffer that sees every write and cannot be written', () => {
    const id = ipc.shmget(IPC_PRIVATE, 4096, 0o600);
    const writable = ipc.shmat(id);
    const view = ipc.keep(shmat(id, SHM_RDONLY));
    assert.ok(view instanceof ReadOnlyBuffer);
    assert.ok(!Buffer.isBuffer(view));
    assert.equal(view.length, 4096);

    writable.write('hello, reader', 100);
    writable.writeDoubleLE(Math.PI, 200);
    writable.writeBigUInt64BE(2n ** 63n, 300);
    assert.equal(view.toString('utf8', 100, 113), 'hello, reader');
    assert.equal(view.readDoubleLE(200), Math.PI);
    assert.equal(view.readBigUInt64BE(300), 2n ** 63n);
    assert.equal(view.at(100), 'h'.charCodeAt(0));
    assert.equal(view.indexOf('reader'), 107);
    assert.ok(view.subarray(100, 105).equals(Buffer.from('hello')));
    assert.deepEqual([...view.subarray(100, 102)], [104, 101]);
    const copy = view.toBuffer();
    writable[0] = 9;
    assert.equal(copy[0], 0, 'toBuffer copies');
    assert.equal(view.at(0), 9, 'the view does not');

    // No write path exists: no write methods, no writable view, and index writes throw.
    for (const method of ['write', 'fill', 'set', 'writeUInt8', 'swap16', 'buffer', 'copyWithin', 'reverse', 'sort']) {
      assert.equal((view as unknown as Record<string, unknown>)[method], undefined, method);
    }
    assert.throws(() => {
      (view as unknown as Record<number, number>)[0] = 1;
    }, TypeError);
    assert.throws(() => view.copy(view as unknown as Buffer), TypeError);
    assert.equal(view.at(0), 9);
  });

  it('detach like any attachment: zero length, reads throw instead of faulting', () => {
    const id = ipc.shmget(IPC_PRIVATE, 64, 0o600);
    const view = shmat(id, SHM_RDONLY);
    const part = view.subarray(8);
    shmdt(part);
    assert.equal(nattch(id), 0);
    assert.equal(view.length, 0);
    assert.equal(part.length, 0);
    assert.throws(() => view.readUInt32LE(0), RangeError);
    assert.throws(() => view.at(0), TypeError);
    assert.equal(view.toString(), '');
    assertErrno(() => shmdt(view), 'EINVAL', 'shmdt');
  });
});

describe('segments larger than a Buffer', () => {
  const ipc = useShmCleanup();

  it('shmat throws RangeError [ERR_BUFFER_TOO_LARGE] for a 1 TiB segment and leaves nothing attached', () => {
    const id = ipc.shmget(IPC_PRIVATE, 2 ** 40, SHM_NORESERVE | 0o600);
    assert.equal(shmctl(id, IPC_STAT).segsz, 2 ** 40);
    for (const flags of [0, SHM_RDONLY]) {
      assert.throws(() => shmat(id, flags), {
        name: 'RangeError',
        code: 'ERR_BUFFER_TOO_LARGE',
        message: new RegExp(`larger than ${bufferConstants.MAX_LENGTH} bytes: segment ${id} has ${2 ** 40} bytes`),
      });
    }
    assert.equal(nattch(id), 0);
  });

  it('attaches a segment of exactly buffer.constants.MAX_LENGTH bytes, and not one byte more', () => {
    const max = bufferConstants.MAX_LENGTH;
    const fits = ipc.shmget(IPC_PRIVATE, max, SHM_NORESERVE | 0o600);
    const buffer = ipc.shmat(fits);
    assert.equal(buffer.length, max);
    buffer[max - 1] = 1;
    assert.equal(buffer[max - 1], 1);
    const tooBig = ipc.shmget(IPC_PRIVATE, max + 1, SHM_NORESERVE | 0o600);
    assert.throws(() => shmat(tooBig), { code: 'ERR_BUFFER_TOO_LARGE' });
  });

  it('SharedMemory.create removes the segment it made when it cannot attach it', () => {
    const key = randomKey();
    assert.throws(() => SharedMemory.create(key, 2 ** 40, { noReserve: true }), { code: 'ERR_BUFFER_TOO_LARGE' });
    assertErrno(() => shmget(key, 0, 0), 'ENOENT', 'shmget');
  });
});

describe('worker threads', function () {
  this.timeout(20000);
  const ipc = useShmCleanup();

  it('load the addon, share a segment, and detach when they end or are terminated', async () => {
    const id = ipc.shmget(IPC_PRIVATE, 4096, 0o600);
    const buffer = ipc.shmat(id);
    const workers = [0, 1, 2, 3].map((index) => new Worker(join(__dirname, 'fixtures', 'shm-worker.js'), {
      workerData: { id, index, stay: index % 2 === 1 },
    }));
    const exits = workers.map((worker) => once(worker, 'exit'));
    const replies = await Promise.all(workers.map((worker) => once(worker, 'message')));
    assert.deepEqual(replies.map(([reply]) => reply.length), [4096, 4096, 4096, 4096]);
    assert.deepEqual([...buffer.subarray(0, 4)], [1, 2, 3, 4]);

    // Workers 0 and 2 return; 1 and 3 hold their attachment until terminated.
    await Promise.all([exits[0], exits[2]]);
    assert.equal(nattch(id), 3);
    await Promise.all([workers[1].terminate(), workers[3].terminate()]);
    assert.equal(nattch(id), 1);
  });

  it('cannot have an attachment transferred to another thread', async () => {
    const id = ipc.shmget(IPC_PRIVATE, 64, 0o600);
    const buffer = ipc.shmat(id);
    buffer.write('mine');
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(buffer, [buffer.buffer as ArrayBuffer]);
    const [received] = await once(port2, 'message');
    port1.close();
    port2.close();
    assert.equal(buffer.length, 64, 'not detached by the transfer');
    assert.equal(Buffer.from(received).toString('utf8', 0, 4), 'mine', 'the receiver got a copy');
    assert.equal(nattch(id), 1);
  });
});

describe('fuzz: garbage into every export', function () {
  this.timeout(60000);
  const ipc = useShmCleanup();

  // mulberry32: a small seeded generator, so a failure can be replayed from its seed.
  function random(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it('only ever throws Errors, never crashes, and leaks nothing', () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1e9);
    const next = random(seed);
    const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)];
    // A small key, because every number in the pool also lands in size arguments.
    let key = 0;
    let own = -1;
    while (own === -1) {
      key = 0x1000 + Math.floor(Math.random() * 0xf000);
      try {
        own = ipc.shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0o600);
      } catch (error) {
        if ((error as { code?: string }).code !== 'EEXIST') throw error;
      }
    }
    const removed = shmget(IPC_PRIVATE, 64, 0o600);
    shmctl(removed, IPC_RMID);
    const detached = shmat(own);
    shmdt(detached);
    const detachedReadOnly = shmat(own, SHM_RDONLY);
    shmdt(detachedReadOnly);

    // Only our own ids and keys are valid-looking: garbage must not touch other programs' objects.
    const values: unknown[] = [
      undefined, null, true, NaN, Infinity, -Infinity, -1, -0, 0.5, 1.5, -(2 ** 31) - 1, 2 ** 32 + 1, 2 ** 53, -(2 ** 53),
      Number.MAX_VALUE, Number.MIN_VALUE, 10n, '', '0', 'abc', '/', '\u0000', '/nonexistent', __filename,
      Symbol('x'), {}, [], [1], () => 1, new Date(), Buffer.alloc(3), new Uint16Array(2), new ArrayBuffer(8),
      new SharedArrayBuffer(8), detached, detachedReadOnly, new DataView(new ArrayBuffer(4)),
      own, removed, key, IPC_PRIVATE, 4096, 2 ** 40, IPC_CREAT, IPC_CREAT | IPC_EXCL | 0o600, SHM_RDONLY,
      SHM_NORESERVE | IPC_CREAT, 0o777, 1, 2, 3, 11, 12, 13, 14, 65534, { mode: 'x' }, { uid: -1 }, { mode: 0o600 },
      { exclusive: 'yes' }, { readOnly: true }, { fill: {} }, { fill: 7 }, { noReserve: 1 },
    ];
    const instances: SharedMemory[] = [];
    const exports = kernelIpc as unknown as Record<string, (...args: unknown[]) => unknown>;
    const targets: Array<[string, (...args: unknown[]) => unknown]> = [
      ...['ftok', 'shmget', 'shmat', 'shmdt', 'shmctl'].map((name) => [name, exports[name]] as [string, (...args: unknown[]) => unknown]),
      ['SharedMemory.create', (...args) => SharedMemory.create(...(args as Parameters<typeof SharedMemory.create>))],
      ['SharedMemory.open', (...args) => SharedMemory.open(...(args as [number]))],
      ['new ReadOnlyBuffer', (...args) => new ReadOnlyBuffer(args[0] as Uint8Array)],
      ['ReadOnlyBuffer#method', (name, ...args) => {
        const view = new ReadOnlyBuffer(Buffer.alloc(8));
        return (view as unknown as Record<string, (...a: unknown[]) => unknown>)[pick(['readUInt32LE', 'toString', 'subarray', 'copy', 'indexOf', 'readIntBE', String(name)])]?.(...args);
      }],
      ['SharedMemory#method', (...args) => {
        // Ids can be large numbers, and so the segments made with them as sizes: read() and
        // write() only on small ones, to keep the fuzz from copying gigabytes.
        const shm = pick(instances.filter((instance) => instance.size <= 65536));
        if (!shm) return undefined;
        const method = pick(['read', 'write', 'detach', 'stat']) as 'read';
        return (shm[method] as (...a: unknown[]) => unknown)(...args);
      }],
    ];
    let calls = 0;
    let thrown = 0;
    for (let i = 0; i < 20000; i++) {
      const [name, fn] = pick(targets);
      const args = Array.from({ length: Math.floor(next() * 5) }, () => pick(values));
      let result: unknown;
      try {
        calls++;
        result = fn(...args);
      } catch (error) {
        thrown++;
        assert.ok(error instanceof Error, `${name} threw a non-Error (seed ${seed})`);
        assert.ok(
          error instanceof TypeError || error instanceof RangeError || error instanceof kernelIpc.IpcError
            || (error as { code?: string }).code === 'ERR_INVALID_STATE',
          `${name} threw ${error} (seed ${seed})`,
        );
        continue;
      }
      // Whatever garbage happened to create is cleaned up like everything else.
      if (name === 'shmget') ipc.track(result as number);
      if (name === 'shmat') ipc.keep(result as Buffer);
      if (result instanceof SharedMemory) {
        ipc.track(result.id);
        instances.push(result);
      }
    }
    for (const shm of instances) shm.detach();
    assert.ok(thrown > 0 && thrown < calls, `${thrown} of ${calls} calls threw`);
  });
});
