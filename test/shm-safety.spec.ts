// What JavaScript can do to an attachment without crashing the process: GC, read-only
// mappings, huge segments, worker threads, and garbage into every export.
import assert from 'node:assert/strict';
import { constants as bufferConstants } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { setImmediate as nextImmediate } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { native, packageRoot } from '../lib/native';
import { attachmentsUntransferable } from '../lib/shm';
import {
  IPC_PRIVATE, IPC_RMID, IPC_STAT, ReadOnlyBuffer, SharedMemory, shmat, shmctl, shmdt,
  shmget, SHM_NORESERVE, SHM_RDONLY,
} from '../lib';
import {
  assertErrno, collectGarbage, compileC, fuzzInPrivateNamespace, itAsRoot, preloading, randomKey, seccompRefusal, underSanitizers, usePeers, useShmCleanup,
} from './helpers';

const nattch = (id: number) => shmctl(id, IPC_STAT).nattch;
/** What a child needs for ArrayBuffer#transfer: nothing from Node 21, a V8 flag on Node 20. */
const transferFlags = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function' ? [] : ['--harmony-rab-gsab-transfer'];

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

describe('shmdt under pending Node work', function () {
  this.timeout(20000);
  const ipc = useShmCleanup();

  /** test/fixtures/pending-work.js on a new 64 MiB segment, with `options` for the child. */
  function pendingWork(mode: string, options: { env?: NodeJS.ProcessEnv } = {}): { length: number; nattch: number; nattchAtEnd: number } {
    const id = ipc.shmget(IPC_PRIVATE, 64 << 20, 0o600);
    const out = execFileSync(process.execPath, [...transferFlags, '--expose-gc', join(__dirname, 'fixtures', 'pending-work.js'), String(id), mode], {
      encoding: 'utf8', ...options,
    });
    return JSON.parse(out);
  }

  it('does not crash when the threadpool still writes into the detached memory', () => {
    // randomFill and fs.read write through a pointer taken before shmdt detached every view:
    // were the memory unmapped, the child would die of SIGSEGV.
    const id = ipc.shmget(IPC_PRIVATE, 64 << 20, 0o600);
    const script = `
      'use strict';
      const ipc = require(${JSON.stringify(join(packageRoot, 'dist', 'lib'))});
      const { randomFill } = require('node:crypto');
      const fs = require('node:fs');
      const chunk = 16 << 20;
      const buffer = ipc.shmat(${id});
      const done = (resolve, reject) => (error) => (error ? reject(error) : resolve());
      const work = [0, 1, 2].map((i) => new Promise((resolve, reject) => randomFill(buffer, i * chunk, chunk, done(resolve, reject))));
      const fd = fs.openSync('/dev/urandom', 'r');
      work.push(new Promise((resolve, reject) => fs.read(fd, buffer, 3 * chunk, chunk, null, done(resolve, reject))));
      ipc.shmdt(buffer);
      const nattch = ipc.shmctl(${id}, ipc.IPC_STAT).nattch;
      Promise.all(work).then(() => process.stdout.write(JSON.stringify({ nattch, length: buffer.length })));`;
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), { nattch: 0, length: 0 });
  });

  it('keeps the segment until the work is collected where the kernel refuses anonymous memory in its place', function () {
    // The refused mappings are also what the sanitizers' allocator would take.
    if (underSanitizers) this.skip();
    // As at vm.max_map_count or under strict overcommit; here a seccomp filter refuses exactly
    // that mapping. shmdt once fell back to a plain detach, and the work wrote into nothing.
    const refuse = seccompRefusal('mmap', [[2, 'PROT_READ | PROT_WRITE'], [3, 'MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE']], 'ENOMEM');
    const seen = pendingWork('shmdt', { env: preloading(refuse) });
    assert.deepEqual(seen, { length: 0, nattch: 1, nattchAtEnd: 0 });
  });

  it('does not crash when the memory was moved with ArrayBuffer#transfer, then detached', () => {
    assert.deepEqual(pendingWork('transfer-shmdt'), { length: 0, nattch: 0, nattchAtEnd: 0 });
  });

  it('does not crash when the memory was moved with ArrayBuffer#transfer, then collected', () => {
    // The work still holds the first ArrayBuffer, detached by the transfer: the segment stays
    // attached until that is collected too.
    assert.deepEqual(pendingWork('transfer-drop'), { length: 0, nattch: 1, nattchAtEnd: 0 });
  });
});

/** Huge pages as /proc/meminfo counts them; undefined on a kernel without them. */
function hugePages(): { size: number; free: number } | undefined {
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(meminfo)?.[1]);
  const size = field('Hugepagesize') * 1024;
  return Number.isNaN(size) ? undefined : { size, free: field('HugePages_Free') };
}

/**
 * Makes `count` huge pages free (as root, through vm.nr_hugepages) and returns what puts the
 * setting back, or undefined where that cannot be done.
 */
function freeHugePages(count: number): (() => void) | undefined {
  const pages = hugePages();
  if (pages === undefined) return undefined;
  if (pages.free >= count) return () => undefined;
  const setting = '/proc/sys/vm/nr_hugepages';
  let before: string;
  try {
    before = readFileSync(setting, 'utf8');
    writeFileSync(setting, String(Number(before) + count - pages.free));
  } catch {
    return undefined;
  }
  const restore = () => writeFileSync(setting, before);
  if (hugePages()!.free < count) {
    restore();
    return undefined;
  }
  return restore;
}

/**
 * The environment of a child that cannot use PROCMAP_QUERY (Linux 6.11) to learn a mapping's
 * page size: a seccomp filter makes that ioctl fail with ENOTTY, as older kernels do, or with
 * EPERM, as a filter or security module of the system's own may.
 */
function withoutProcmapQuery(errno: 'ENOTTY' | 'EPERM'): NodeJS.ProcessEnv {
  return preloading(seccompRefusal('ioctl', [[1, '0xc0686611 /* PROCMAP_QUERY */']], errno));
}

describe('segments of huge pages (SHM_HUGETLB)', function () {
  this.timeout(20000);
  const ipc = useShmCleanup();
  const SHM_HUGETLB = 0o4000;
  // How a mapping's page size is learnt: PROCMAP_QUERY, else /proc/self/smaps.
  const lookups: Array<[string, () => NodeJS.ProcessEnv]> = [
    ['PROCMAP_QUERY', () => process.env],
    ['/proc/self/smaps, before Linux 6.11', () => withoutProcmapQuery('ENOTTY')],
    ['/proc/self/smaps, PROCMAP_QUERY refused', () => withoutProcmapQuery('EPERM')],
  ];

  /**
   * A segment of huge pages made by a C program without reserving them, as our shmget refuses
   * to, with more pages than are free: the first touch of a missing one kills the process.
   * Returns its key and id.
   */
  function unreservedHugeSegment(): { key: number; id: number } | undefined {
    const pages = hugePages();
    if (pages === undefined) return undefined;
    const key = randomKey();
    const make = compileC(`
      #include <stdio.h>
      #include <stdlib.h>
      #include <sys/shm.h>
      int main(int argc, char **argv) {
        int id = shmget(atoi(argv[1]), strtoull(argv[2], 0, 10), IPC_CREAT | IPC_EXCL | 0600 | SHM_HUGETLB | SHM_NORESERVE);
        if (id < 0) { perror("shmget"); return 1; }
        printf("%d\\n", id);
        return 0;
      }
    `);
    return { key, id: ipc.track(Number(execFileSync(make, [String(key), String((pages.free + 2) * pages.size)], { encoding: 'utf8' }))) };
  }

  /** In a child run as `command`, each way to attach segment `id` (key `key`) and touch it. */
  function attachAndTouch({ key, id }: { key: number; id: number }, command: string[], env = process.env): Record<string, unknown> {
    const script = `
      'use strict';
      const ipc = require(${JSON.stringify(join(packageRoot, 'dist', 'lib'))});
      const attempts = {
        shmat: () => { ipc.shmat(${id})[0] = 1; },
        readOnly: () => ipc.shmat(${id}, ipc.SHM_RDONLY).readUInt8(0),
        open: () => { ipc.SharedMemory.open(${key}).buffer[0] = 1; },
      };
      const seen = {};
      for (const [name, attempt] of Object.entries(attempts)) {
        try {
          attempt();
          seen[name] = 'touched';
        } catch ({ code, syscall, message }) {
          seen[name] = { code, syscall, message };
        }
      }
      seen.nattch = ipc.shmctl(${id}, ipc.IPC_STAT).nattch;
      process.stdout.write(JSON.stringify(seen));`;
    const [file, ...args] = [...command, process.execPath, '-e', script];
    return JSON.parse(execFileSync(file, args, { encoding: 'utf8', env }));
  }

  for (const [lookup, environment] of lookups) {
  itAsRoot(`are not attached when their pages cannot all be had, rather than raise SIGBUS when touched (${lookup})`, 'a segment of huge pages needs CAP_IPC_LOCK', function () {
    const segment = unreservedHugeSegment();
    if (segment === undefined) this.skip();
    const refusal = {
      code: 'ENOMEM',
      syscall: 'shmat',
      message: `ENOMEM: segment ${segment.id} uses huge pages (SHM_HUGETLB) and not all of them can be had: touching a missing `
        + `one would kill the process with SIGBUS, shmat id ${segment.id}`,
    };
    assert.deepEqual(attachAndTouch(segment, [], environment()), { shmat: refusal, readOnly: refusal, open: refusal, nattch: 0 });
  });

  itAsRoot(`attach with every page had, and detach under pending work though their size is not a multiple of the page (${lookup})`, 'freeing huge pages (vm.nr_hugepages) needs root', function () {
    const restore = freeHugePages(2);
    if (restore === undefined) this.skip();
    const { size: pageSize } = hugePages()!;
    let id = -1;
    try {
      // One and a half pages: the mapping is two.
      id = ipc.shmget(IPC_PRIVATE, pageSize + pageSize / 2, SHM_HUGETLB | 0o600);
      const buffer = ipc.shmat(id);
      assert.equal(buffer.length, pageSize + pageSize / 2);
      buffer.writeUInt32LE(0xfeedface, buffer.length - 4);
      const view = ipc.keep(shmat(id, SHM_RDONLY));
      assert.equal(view.readUInt32LE(view.length - 4), 0xfeedface);
      shmdt(view);
      shmdt(buffer);
      // The placeholder once had the segment's size, which the kernel cannot put over part of
      // a huge page: shmdt fell back to a plain detach, and the work wrote into nothing.
      const out = execFileSync(process.execPath, ['--expose-gc', join(__dirname, 'fixtures', 'pending-work.js'), String(id), 'shmdt'], {
        encoding: 'utf8', env: environment(),
      });
      assert.deepEqual(JSON.parse(out), { length: 0, nattch: 0, nattchAtEnd: 0 });
    } finally {
      if (id !== -1) shmctl(id, IPC_RMID);
      restore();
    }
  });
  }

  itAsRoot('are not attached where their page size cannot be learnt (no /proc), rather than raise SIGBUS when touched', 'a segment of huge pages needs CAP_IPC_LOCK', function () {
    const segment = unreservedHugeSegment();
    // Without /proc, the sanitizers' runtime cannot find the stack, and reports what is not.
    if (segment === undefined || underSanitizers) this.skip();
    // A mount namespace of the child's own, with nothing mounted on /proc.
    const noProc = ['unshare', '--mount', 'sh', '-c', 'mount -t tmpfs none /proc && exec "$@"', 'sh'];
    const refusal = {
      code: 'EINVAL',
      syscall: 'shmat',
      message: `EINVAL: segment ${segment.id} may use huge pages, and without /proc kernel-ipc cannot tell their size, shmat id ${segment.id}`,
    };
    assert.deepEqual(attachAndTouch(segment, noProc), { shmat: refusal, readOnly: refusal, open: refusal, nattch: 0 });
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
    assert.equal(view.at(-4096), 0);
    assert.equal(view.at(4096), undefined);
    assert.equal(view.readUIntBE(300, 3), 0x800000);
    assert.equal(view.subarray(100, 105).toString(), 'hello');
    assert.equal(view.subarray(-3996, -3991).toString(), 'hello');
    assert.deepEqual([...view.subarray(100, 102)], [104, 101]);
    assert.equal([...view].length, 4096);
    const target = Buffer.alloc(8, 0xee);
    assert.equal(view.copy(target, 2, 100, 103), 3);
    assert.deepEqual([...target], [0xee, 0xee, 104, 101, 108, 0xee, 0xee, 0xee]);
    assert.equal(view.copy(target, 6, 100), 2, 'as many as fit');
    assert.equal(view.copy(target, 9, 100), 0, 'none past the end, as Buffer#copy');
    const data = new DataView(new ArrayBuffer(4));
    assert.equal(view.copy(data, 0, 100), 4);
    assert.equal(data.getUint8(0), 104);
    const shared = new Uint8Array(new SharedArrayBuffer(4));
    assert.equal(view.copy(shared, 1, 100), 3);
    assert.deepEqual([...shared], [0, 104, 101, 108]);
    const floats = new Float64Array(1);
    assert.equal(view.copy(floats, 0, 200), 8);
    assert.equal(floats[0], Math.PI);
    // subarray and toString take their arguments as Buffer's do, whatever they are.
    const same = Buffer.alloc(4096);
    view.copy(same);
    const ranges: unknown[][] = [
      [], ['1'], [1.5, '7'], ['x'], [NaN, Infinity], [-Infinity], [-5], [100, -3990], [null, {}], [[], [200]], [4095, 4097],
    ];
    for (const range of ranges) {
      const asBuffer = (same.subarray as (...args: unknown[]) => Buffer)(...range);
      assert.deepEqual(view.subarray(...(range as [number, number])).toBuffer(), asBuffer, `subarray(${range})`);
      assert.equal(view.toString('latin1', ...(range as [number, number])), same.toString('latin1', ...(range as [number, number])), `toString(latin1, ${range})`);
    }
    assert.throws(() => view.subarray(1n as unknown as number), TypeError);
    assert.throws(() => view.toString('nope' as BufferEncoding), { name: 'TypeError', code: 'ERR_UNKNOWN_ENCODING' });
    assert.equal(view.toString('nope' as BufferEncoding, 5, 5), '', 'an empty range is empty whatever the encoding, as with Buffer');
    assert.throws(() => view.readUInt32LE(4093), { name: 'RangeError', message: /"offset"/ });
    assert.throws(() => view.readUInt8(-1), { name: 'RangeError' });
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
    assert.throws(() => new (ReadOnlyBuffer as unknown as new (bytes: Buffer) => unknown)(Buffer.alloc(4)), TypeError);
    assert.equal(view.at(0), 9);
  });

  it('cannot be written even by code that patches Buffer, TypedArray and worker_threads', () => {
    // Every way the review found to pull a writable view out of a Buffer hidden behind a
    // wrapper, before and after loading the package; none may crash the child.
    const id = ipc.shmget(IPC_PRIVATE, 4096, 0o600);
    const script = `
      'use strict';
      const worker = require('node:worker_threads');
      const leaked = [];
      const keep = (value) => { if (value && typeof value === 'object') leaked.push(value); return value; };
      const patch = () => {
        for (const name of ['at', 'utf8Slice', 'hexSlice', 'latin1Slice', 'toString', 'readUInt32LE', 'subarray', 'copy']) {
          const original = Buffer.prototype[name];
          Buffer.prototype[name] = function (...args) { keep(this); return original.apply(this, args); };
        }
        const from = Buffer.from;
        Buffer.from = function (...args) { keep(args[0]); return from.apply(this, args); };
        const mark = worker.markAsUntransferable;
        worker.markAsUntransferable = (value) => { keep(value); return mark(value); };
        const TypedArray = Object.getPrototypeOf(Uint8Array.prototype);
        const getter = Object.getOwnPropertyDescriptor(TypedArray, 'buffer').get;
        Object.defineProperty(TypedArray, 'buffer', { get() { return keep(getter.call(this)); } });
      };
      patch();
      const ipc = require(${JSON.stringify(join(packageRoot, 'dist', 'lib'))});
      patch();
      const id = ${id};
      {
        const writer = ipc.shmat(id);
        writer.write('data');
        ipc.shmdt(writer);
        const view = ipc.shmat(id, ipc.SHM_RDONLY);
        const results = [view.toString('utf8', 0, 4), view.readUInt32LE(0), view.at(0), require('node:util').inspect(view)];
        for (const method of ['at', 'toString', 'readUInt32LE', 'subarray', 'copy', 'toBuffer']) {
          try { keep(view[method](Buffer.alloc(4))); } catch {}
        }
        for (const value of leaked) {
          try { new Uint8Array(value.buffer ?? value).fill(1); } catch {}
          try { value[0] = 1; } catch {}
        }
        process.stdout.write(JSON.stringify({ results: results.slice(0, 3), leaked: leaked.length, after: view.toString('utf8', 0, 4) }));
      }`;
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    const { results, after } = JSON.parse(out);
    assert.deepEqual(results, ['data', 0x61746164, 0x64]);
    assert.equal(after, 'data', 'nothing wrote into the read-only mapping');
  });

  it('detach like any attachment: zero length, reads throw instead of faulting', () => {
    const id = ipc.shmget(IPC_PRIVATE, 64, 0o600);
    const view = shmat(id, SHM_RDONLY);
    const part = view.subarray(8);
    shmdt(part);
    assert.equal(nattch(id), 0);
    assert.equal(view.length, 0);
    assert.equal(part.length, 0);
    assert.throws(() => view.readUInt32LE(0), { code: 'ERR_BUFFER_OUT_OF_BOUNDS' });
    assert.equal(view.at(0), undefined);
    assert.equal(view.toString(), '');
    assertErrno(() => shmdt(view), 'EINVAL', 'shmdt');
    assert.throws(() => shmdt(Object.create(ReadOnlyBuffer.prototype)), { name: 'TypeError', message: /"view"/ });
  });
});

describe('segments larger than a Buffer', () => {
  const ipc = useShmCleanup();
  // Node 20's limit is 4 GiB; from Node 22 it is 2^53 - 1, beyond any segment Linux maps.
  const max = bufferConstants.MAX_LENGTH;
  const limitReachable = max < 2 ** 40;

  it('shmat throws RangeError [ERR_BUFFER_TOO_LARGE] for a 1 TiB segment and leaves nothing attached', function () {
    if (!limitReachable) this.skip();
    const id = ipc.shmget(IPC_PRIVATE, 2 ** 40, SHM_NORESERVE | 0o600);
    assert.equal(shmctl(id, IPC_STAT).segsz, 2 ** 40);
    assert.throws(() => shmat(id), {
      name: 'RangeError',
      code: 'ERR_BUFFER_TOO_LARGE',
      message: new RegExp(`larger than ${max} bytes: segment ${id} has ${2 ** 40} bytes`),
    });
    assert.equal(nattch(id), 0);
  });

  it('attaches a 1 TiB segment read-only: a ReadOnlyBuffer is not limited by Buffer', () => {
    const id = ipc.shmget(IPC_PRIVATE, 2 ** 40, SHM_NORESERVE | 0o600);
    const view = ipc.keep(shmat(id, SHM_RDONLY));
    assert.equal(view.length, 2 ** 40);
    assert.equal(view.readBigUInt64LE(2 ** 40 - 8), 0n);
    assert.equal(view.subarray(2 ** 40 - 2).length, 2);
    assert.throws(() => view.readUInt8(2 ** 40), RangeError);
  });

  it('attaches a segment of exactly buffer.constants.MAX_LENGTH bytes, and not one byte more', function () {
    if (!limitReachable) this.skip();
    const fits = ipc.shmget(IPC_PRIVATE, max, SHM_NORESERVE | 0o600);
    const buffer = ipc.shmat(fits);
    assert.equal(buffer.length, max);
    buffer[max - 1] = 1;
    assert.equal(buffer[max - 1], 1);
    const tooBig = ipc.shmget(IPC_PRIVATE, max + 1, SHM_NORESERVE | 0o600);
    assert.throws(() => shmat(tooBig), { code: 'ERR_BUFFER_TOO_LARGE' });
  });

  it('the binding itself refuses a Buffer larger than Node allows, whatever limit it is told', function () {
    if (!limitReachable) this.skip();
    const id = ipc.shmget(IPC_PRIVATE, max + 4096, SHM_NORESERVE | 0o600);
    assert.throws(() => native.shmat(id, 0, 2 ** 53), { code: 'ERR_BUFFER_TOO_LARGE' });
    assert.equal(nattch(id), 0);
  });

  it('SharedMemory.create removes the segment it made when it cannot attach it', function () {
    if (!limitReachable) this.skip();
    const key = randomKey();
    try {
      assert.throws(() => SharedMemory.create(key, max + 1, { noReserve: true }), { code: 'ERR_BUFFER_TOO_LARGE' });
      assertErrno(() => shmget(key, 0, 0), 'ENOENT', 'shmget');
    } finally {
      try {
        ipc.track(shmget(key, 0, 0));
      } catch {
        // Removed, as it should be.
      }
    }
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

  it('postMessage with a transfer list copies an attachment instead of moving it', async function () {
    if (!attachmentsUntransferable) this.skip();
    const id = ipc.shmget(IPC_PRIVATE, 64, 0o600);
    const buffer = ipc.shmat(id);
    buffer.write('mine');
    const { port1, port2 } = new MessageChannel();
    try {
      // Node 20 copies a buffer marked untransferable; Node 22 refuses with DataCloneError.
      port1.postMessage(buffer, [buffer.buffer as ArrayBuffer]);
      const [received] = await once(port2, 'message');
      assert.equal(Buffer.from(received).toString('utf8', 0, 4), 'mine', 'the receiver got a copy');
    } catch (error) {
      assert.equal((error as Error).name, 'DataCloneError');
    } finally {
      port1.close();
      port2.close();
    }
    assert.equal(buffer.length, 64, 'not detached by the transfer');
    assert.equal(nattch(id), 1);
  });

  it('shmdt of an attachment the user marked untransferable detaches it, or refuses: it never aborts', () => {
    const id = ipc.shmget(IPC_PRIVATE, 64, 0o600);
    const fixture = join(__dirname, 'fixtures', 'untransferable.js');
    const seen = JSON.parse(execFileSync(process.execPath, [fixture, String(id)], { encoding: 'utf8' }));
    // Node 24+ keys marked ArrayBuffers, and V8 then refuses to detach them.
    assert.deepEqual(seen, seen.refused === null ? { refused: null, length: 0 } : { refused: 'ERR_INVALID_STATE', length: 64 });
    assert.equal(nattch(id), 0);
  });
});

describe('ArrayBuffer#transfer (Node 21+; here behind a V8 flag)', function () {
  this.timeout(20000);
  const ipc = useShmCleanup();

  it('moved memory is still the attachment: shmdt and GC detach it through the new owner', () => {
    const id = ipc.shmget(IPC_PRIVATE, 4096, 0o600);
    const fixture = join(__dirname, 'fixtures', 'transfer.js');
    const flags = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function' ? [] : ['--harmony-rab-gsab-transfer'];
    const out = execFileSync(process.execPath, [...flags, '--expose-gc', fixture, String(id)], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), {
      oldLength: 0,
      movedByte: 7,
      attached: 1,
      afterShmdt: [0, 0],
      afterGc: [1, 2],
    });
  });
});

describe('attachment memory moved between threads (ArrayBuffer#transfer, postMessage)', function () {
  this.timeout(30000);
  const ipc = useShmCleanup();

  /** test/fixtures/moved-memory.js in `mode`, on new segments of 1 MiB. */
  function moved(mode: string): Record<string, unknown> {
    const ids = [ipc.shmget(IPC_PRIVATE, 1 << 20, 0o600), ipc.shmget(IPC_PRIVATE, 1 << 20, 0o600)];
    const out = execFileSync(process.execPath, [...transferFlags, '--expose-gc', join(__dirname, 'fixtures', 'moved-memory.js'), mode, ...ids.map(String)], {
      encoding: 'utf8',
    });
    return JSON.parse(out);
  }

  it('a worker detaching memory moved into it races nothing in the thread that attached it', () => {
    // That thread runs the memory's finalizer, at the same time: it once freed what the worker
    // was still using, corrupting the heap.
    assert.deepEqual(moved('into-worker'), { nattch: 0 });
  });

  for (const [mode, how] of [['out-of-worker', 'ends'], ['out-of-worker-terminated', 'is terminated']]) {
    it(`memory moved out of a worker that ${how} stays the segment's, attached until it is detached`, () => {
      // Node frees external memory with the environment that made it, wherever it lives then.
      assert.deepEqual(moved(mode), { length: 1 << 20, bytes: [42, 2], nattch: 1, afterShmdt: [0, 0], fresh: ['fresh', 1] });
    });
  }

  it('memory moved out of a worker that dropped its Buffer first stays mapped, as anonymous memory', () => {
    // Where it went can no longer be told: no crash, but no segment behind it either.
    assert.deepEqual(moved('out-of-worker-dropped'), { length: 1 << 20, bytes: [0, 2], nattch: 0, afterShmdt: 'EINVAL', fresh: ['fresh', 1] });
  });

  it('threads ending with attachments marked untransferable end cleanly', () => {
    // On Node 24 the mark is a detach key, and Node's cleanup of the ArrayBuffer it made for
    // the memory, without a key, aborted the process.
    assert.deepEqual(moved('marked'), { ended: true });
  });
});

describe('many attachments', function () {
  this.timeout(60000);
  const ipc = useShmCleanup();

  it('stop short of vm.max_map_count, leaving the process room to go on', () => {
    // At the limit V8 cannot map anything and the process dies: shmat refuses first.
    const id = ipc.shmget(IPC_PRIVATE, 4096, 0o600);
    const script = `
      'use strict';
      const ipc = require(${JSON.stringify(join(packageRoot, 'dist', 'lib'))});
      const held = [];
      let refusal;
      for (;;) {
        try {
          held.push(ipc.shmat(${id}, held.length % 2 === 0 ? 0 : ipc.SHM_RDONLY));
        } catch ({ code, syscall, message }) {
          refusal = { code, syscall, message };
          break;
        }
      }
      const junk = Array.from({ length: 200000 }, (_, i) => ({ i, text: 'x'.repeat(i % 100) }));
      for (const view of held) ipc.shmdt(view);
      process.stdout.write(JSON.stringify({ refusal, held: held.length, junk: junk.length, nattch: ipc.shmctl(${id}, ipc.IPC_STAT).nattch }));`;
    const seen = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
    const limit = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8'));
    const most = limit - Math.floor(limit / 8);
    assert.deepEqual(seen, {
      refusal: {
        code: 'ENOMEM',
        syscall: 'shmat',
        message: `ENOMEM: kernel-ipc already holds ${most} attachments, the most it makes: the rest of vm.max_map_count is left to the rest of the process, shmat id ${id}`,
      },
      held: most,
      junk: 200000,
      nattch: 0,
    });
  });

  it('count what is attached, not what was: attaching and detaching more often than that in one go works', () => {
    // A detached attachment leaves anonymous memory until GC, which the kernel merges with the
    // one before: those are not counted.
    const id = ipc.shmget(IPC_PRIVATE, 4096, 0o600);
    const limit = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8'));
    const script = `
      'use strict';
      const ipc = require(${JSON.stringify(join(packageRoot, 'dist', 'lib'))});
      for (let i = 0; i < ${limit}; i++) ipc.shmdt(ipc.shmat(${id}));
      process.stdout.write(JSON.stringify({ nattch: ipc.shmctl(${id}, ipc.IPC_STAT).nattch }));`;
    assert.deepEqual(JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })), { nattch: 0 });
  });
});

describe('fuzz: garbage into every shared-memory export', function () {
  this.timeout(60000);
  const newPeer = usePeers();

  it('only ever throws or rejects with Errors, never crashes or blocks, and leaves no segment attached after GC (in an IPC namespace of its own)', async () => {
    await fuzzInPrivateNamespace(newPeer, 'shm');
  });
});
