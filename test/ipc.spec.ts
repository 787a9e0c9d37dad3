// ftok, the constants, what every class shares (keys, ids, errors naming them) and the
// package entry points.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import * as kernelIpc from '../lib';
import { constants, ftok, IPC_PRIVATE, KEY_MAX, KEY_MIN, MessageQueue, Mutex, SemaphoreSet, SharedMemory } from '../lib';
import { packageRoot } from '../lib/native';
import { assertErrno, compileC, randomKey, useMsgCleanup, useSemCleanup, useShmCleanup } from './helpers';

const ftokC = `
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
int main(int argc, char **argv) {
  key_t key = ftok(argv[1], atoi(argv[2]));
  if (key == -1) { perror("ftok"); return 1; }
  printf("%d\\n", (int)key);
  return 0;
}
`;

describe('ftok', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kernel-ipc-ftok-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('returns the same number as C ftok, negative keys included', () => {
    const program = compileC(ftokC);
    const files = ['a', 'b', 'c'].map((name) => {
      const file = join(dir, name);
      writeFileSync(file, name);
      return file;
    });
    for (const file of [...files, dir, '/']) {
      for (const projId of [1, 'A'.charCodeAt(0), 127, 128, 255]) {
        const expected = Number(execFileSync(program, [file, String(projId)], { encoding: 'utf8' }));
        assert.equal(ftok(file, projId), expected, `${file} ${projId}`);
      }
    }
    // projId 255 sets the top byte: C's key_t is signed, and so is ours.
    assert.ok(ftok(files[0], 255) < 0);
  });

  it('reports a missing file like fs does, with the path', () => {
    const missing = join(dir, 'missing');
    assertErrno(() => ftok(missing, 1), 'ENOENT', 'ftok');
    assert.throws(() => ftok(missing, 1), {
      message: `ENOENT: no such file or directory, ftok '${missing}'`,
      errno: -2,
      path: missing,
    });
  });

  it('rejects bad arguments before the syscall', () => {
    assert.throws(() => ftok(1 as unknown as string, 1), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /"path"/ });
    assert.throws(() => ftok('/tmp\u0000x', 1), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /'path'/ });
    for (const projId of [0, 256, -1, 1.5, NaN, Infinity]) {
      assert.throws(() => ftok('/', projId), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /"projId"/ });
    }
    assert.throws(() => ftok('/', '1' as unknown as number), { name: 'TypeError', message: /"projId"/ });
  });
});

describe('constants', () => {
  it('match the C headers', () => {
    const names = Object.keys(constants);
    const program = compileC(`
#define _GNU_SOURCE
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/msg.h>
#include <sys/sem.h>
/* Not C's: sysv_ipc's names for key_t's range and for create-exclusive. */
#define KEY_MIN INT_MIN
#define KEY_MAX INT_MAX
#define IPC_CREX (IPC_CREAT | IPC_EXCL)
int main(void) {
${names.map((name) => `  printf("%s %d\\n", "${name}", (int)(${name}));`).join('\n')}
  return 0;
}
`);
    const fromC = Object.fromEntries(
      execFileSync(program, { encoding: 'utf8' }).trim().split('\n').map((line) => {
        const [name, value] = line.split(' ');
        return [name, Number(value)];
      }),
    );
    assert.deepEqual({ ...constants }, fromC);
  });

  it('are exported by name too', () => {
    for (const [name, value] of Object.entries(constants)) {
      assert.equal((kernelIpc as Record<string, unknown>)[name], value, name);
    }
    assert.ok(Object.isFrozen(constants));
  });
});

describe('the classes', function () {
  this.timeout(20000);
  const shm = useShmCleanup();
  const msg = useMsgCleanup();
  const sem = useSemCleanup();
  // Each class, made the way the README shows, and registered for cleanup.
  const classes = [
    {
      name: 'SharedMemory', syscall: 'shmget',
      create: (key?: number | null) => {
        const made = SharedMemory.create(key, 64);
        shm.keep(made.buffer);
        return made;
      },
      open: (target: number | { id: number }) => {
        const opened = SharedMemory.open(target);
        shm.keep(opened.buffer);
        return opened;
      },
      track: (id: number) => shm.track(id),
    },
    {
      name: 'MessageQueue', syscall: 'msgget',
      create: (key?: number | null) => MessageQueue.create(key, undefined),
      open: (target: number | { id: number }) => MessageQueue.open(target),
      track: (id: number) => msg.track(id),
    },
    {
      name: 'SemaphoreSet', syscall: 'semget',
      create: (key?: number | null) => SemaphoreSet.createSync(key),
      open: (target: number | { id: number }) => SemaphoreSet.openSync(target),
      track: (id: number) => sem.track(id),
    },
  ];

  for (const { name, syscall, create, open, track } of classes) {
    const made = (key?: number | null) => {
      const object = create(key);
      track(object.id);
      return object;
    };

    it(`${name}: created with no key, takes a random unused one`, () => {
      const [a, b] = [made(), made(null)];
      for (const object of [a, b]) {
        assert.ok(Number.isInteger(object.key) && object.key >= KEY_MIN && object.key <= KEY_MAX, String(object.key));
        assert.notEqual(object.key, IPC_PRIVATE);
        assert.equal(object.stat().key, object.key);
        assert.equal(open(object.key).id, object.id);
      }
      assert.notEqual(a.key, b.key);
      assert.equal(made(IPC_PRIVATE).key, IPC_PRIVATE);
    });

    it(`${name}: opens by id, keeps its key after remove(), and its id cannot be changed`, () => {
      const key = randomKey();
      const object = made(key);
      const byId = open({ id: object.id });
      assert.deepEqual([byId.id, byId.key], [object.id, key]);
      assert.equal(open({ id: made(IPC_PRIVATE).id }).key, IPC_PRIVATE);
      object.remove();
      assert.equal(object.key, key);
      assert.equal(byId.key, key);
      assert.throws(() => {
        (object as { id: number }).id = 42;
      }, TypeError);
      assert.throws(() => open({ id: -1 }), { name: 'RangeError', message: /"id"/ });
      assert.throws(() => open('1' as unknown as number), { name: 'TypeError', message: /"key"/ });
    });

    it(`${name}: its errors name the key or id, as fs errors name the path`, () => {
      const key = randomKey();
      const hex = (key >>> 0).toString(16).padStart(8, '0');
      assert.throws(() => open(key), (error: Error & { key?: number; id?: number }) => {
        assert.equal(error.message, `ENOENT: no such file or directory, ${syscall} key 0x${hex}`);
        assert.deepEqual([error.key, error.id], [key, undefined]);
        // The stack says it once.
        assert.equal(error.stack!.split('\n')[0], `IpcError: ${error.message}`);
        return true;
      });
      const object = made(key);
      assert.throws(() => made(key), { code: 'EEXIST', message: `EEXIST: file exists, ${syscall} key 0x${hex}`, key });
      // A segment goes once no process has it attached.
      if (object instanceof SharedMemory) object.detach();
      object.remove();
      assert.throws(() => object.stat(), (error: Error & { id?: number }) => {
        assert.match(error.message, new RegExp(`^EINVAL: invalid argument, ...ctl id ${object.id}$`));
        return error.id === object.id;
      });
    });
  }

  it('Mutex and SharedMemory: what they were made or opened on cannot be changed by assignment', () => {
    const set = SemaphoreSet.createSync(IPC_PRIVATE, { initialValue: 1 });
    sem.track(set.id);
    const other = SemaphoreSet.createSync(IPC_PRIVATE);
    sem.track(other.id);
    const mutex = new Mutex(set);
    const memory = SharedMemory.create(IPC_PRIVATE, 64);
    shm.track(memory.id);
    shm.keep(memory.buffer);
    const assign = (object: object, field: string, value: unknown) => assert.throws(() => {
      (object as Record<string, unknown>)[field] = value;
    }, TypeError, field);
    assign(mutex, 'semaphores', other);
    assign(mutex, 'index', 3);
    assign(mutex, 'id', other.id);
    assign(memory, 'readOnly', true);
    assert.deepEqual([mutex.semaphores, mutex.index, mutex.id, memory.readOnly], [set, 0, set.id, false]);
    memory.detach();
    memory.attach();
    memory.buffer[0] = 1;
  });

  it('return promises from every method that can wait, whatever they are given', async () => {
    const set = SemaphoreSet.createSync(IPC_PRIVATE);
    sem.track(set.id);
    const queue = MessageQueue.create(IPC_PRIVATE);
    msg.track(queue.id);
    const mutex = new Mutex(set);
    // Called on objects that are not what they claim (private fields missing) or with garbage.
    const calls: Array<[string, () => unknown]> = [
      ['SemaphoreSet#op', () => SemaphoreSet.prototype.op.call(Object.create(SemaphoreSet.prototype), [])],
      ['SemaphoreSet#acquire', () => SemaphoreSet.prototype.acquire.call(Object.create(SemaphoreSet.prototype), [] as never)],
      ['SemaphoreSet#waitForZero', () => set.waitForZero(0, null as never)],
      ['SemaphoreSet.create', () => SemaphoreSet.create('x' as never)],
      ['SemaphoreSet.open', () => SemaphoreSet.open(new Proxy({}, { get: () => { throw new Error('trap'); } }) as never)],
      ['MessageQueue#send', () => MessageQueue.prototype.send.call(Object.create(MessageQueue.prototype), 'x')],
      ['MessageQueue#receive', () => queue.receive({ get type(): number { throw new Error('getter'); } })],
      ['Mutex#lock', () => Mutex.prototype.lock.call(Object.create(Mutex.prototype))],
      ['Mutex#withLock', () => mutex.withLock(null as never)],
      ['Mutex.create', () => Mutex.create(undefined, 5 as never)],
      ['Mutex.open', () => Mutex.open(0)],
    ];
    for (const [name, call] of calls) {
      const result = call();
      assert.ok(result instanceof Promise, `${name} returned no promise`);
      await assert.rejects(result as Promise<unknown>, Error, name);
    }
  });

  it('retries a random key that is taken', () => {
    // The first random keys drawn are taken: each class must skip them, not fail.
    const taken = randomKey();
    const script = `
      const crypto = require('node:crypto');
      const { randomInt } = crypto;
      let draws = 0;
      crypto.randomInt = (...args) => (++draws <= 3 ? ${taken} : randomInt(...args));
      const { MessageQueue, SemaphoreSet, SharedMemory } = require('kernel-ipc');
      const keys = [];
      for (const create of [() => MessageQueue.create(), () => SemaphoreSet.createSync(), () => SharedMemory.create(undefined, 8)]) {
        draws = 0;
        const object = create();
        keys.push(object.key);
        object.remove();
      }
      process.stdout.write(JSON.stringify(keys));`;
    const taker = [
      MessageQueue.create(taken),
      SemaphoreSet.createSync(taken),
    ];
    msg.track(taker[0].id);
    sem.track(taker[1].id);
    const segment = SharedMemory.create(taken, 8);
    shm.track(segment.id);
    shm.keep(segment.buffer);
    const keys = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: packageRoot, encoding: 'utf8' })) as number[];
    assert.equal(keys.length, 3);
    for (const key of keys) assert.ok(key !== taken && key !== IPC_PRIVATE, String(key));
  });

  it('hands a private object to another process by id', async () => {
    const segment = SharedMemory.create(IPC_PRIVATE, 16);
    shm.track(segment.id);
    shm.keep(segment.buffer);
    const queue = MessageQueue.create(IPC_PRIVATE);
    msg.track(queue.id);
    const mutex = Mutex.createSync(IPC_PRIVATE);
    sem.track(mutex.semaphores.id);
    const guard = mutex.lockSync();
    const script = `
      const { MessageQueue, Mutex, SharedMemory } = require('kernel-ipc');
      (async () => {
        const [shmid, msqid, semid] = process.argv.slice(1).map(Number);
        const segment = SharedMemory.open({ id: shmid });
        const mutex = await Mutex.open({ id: semid });
        const guard = await mutex.lock();
        segment.write('child was here');
        guard.unlock();
        await MessageQueue.open({ id: msqid }).send(segment.read(0, 5));
      })();`;
    const child = promisify(execFile)(process.execPath, ['-e', script, String(segment.id), String(queue.id), String(mutex.semaphores.id)], { cwd: packageRoot });
    // The child waits for the lock, off its event loop, until this process lets it go.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(segment.buffer.readUInt8(0), 0);
    guard.unlock();
    assert.equal((await queue.receive({ timeout: 10000 })).text(), 'child');
    await child;
    assert.equal(segment.read(0, 14).toString(), 'child was here');
  });
});

describe('package', () => {
  it('loads by name, and kernel-ipc/promises, with require() and with import', () => {
    const script = `
      const { ftok, shmget, constants } = require('kernel-ipc');
      const promises = require('kernel-ipc/promises');
      Promise.all([import('kernel-ipc'), import('kernel-ipc/promises')]).then(([esm, esmPromises]) => {
        const ok = esm.ftok === ftok && esm.shmget === shmget && esm.constants.IPC_CREAT === constants.IPC_CREAT
          && typeof esm.SharedMemory === 'function' && typeof esm.MessageQueue === 'function'
          && esmPromises.msgrcv === promises.msgrcv && typeof promises.msgsnd === 'function';
        process.stdout.write(String(ok));
      });`;
    const out = execFileSync(process.execPath, ['-e', script], { cwd: packageRoot, encoding: 'utf8' });
    assert.equal(out, 'true');
  });

  it('loads the prebuild when PREBUILDS_ONLY is set, else the local build', () => {
    const loaded = require('node-gyp-build').resolve(packageRoot) as string;
    const expected = process.env.PREBUILDS_ONLY ? `prebuilds/linux-${process.arch}/kernel-ipc.napi.glibc.node` : 'build/Release/';
    assert.ok(relative(packageRoot, loaded).startsWith(expected), loaded);
  });
});
