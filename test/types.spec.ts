// The built declarations, as TypeScript consumers resolve them: each case type-checks a strict
// consumer project whose node_modules/kernel-ipc is this package.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../lib/native';

const esmConsumer = `
import {
  constants, ftok, futex, IpcError, type Message, MessageQueue, Mutex, type MutexGuard, SemaphoreSet, SharedMemory, shmat,
  shmget,
} from 'kernel-ipc';
import { msgrcv } from 'kernel-ipc/promises';

// True only when A and B are one type. any is no other type, so a declaration that fell back
// to any fails its check, where an assignment to a typed variable would pass.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

const key = ftok('/tmp', 1);
const shmid = shmget(key, 4096, constants.IPC_CREAT | 0o600);
const attached = shmat(shmid);
const memory = SharedMemory.create(key, 4096);
const received = msgrcv(0, 64);
const errnoName = (error: unknown) => (error instanceof IpcError ? error.code : undefined);

true satisfies Same<typeof key, number>;
true satisfies Same<typeof shmid, number>;
true satisfies Same<typeof attached, Buffer>;
true satisfies Same<typeof memory.buffer, Buffer>;
true satisfies Same<typeof received, Promise<{ type: number; data: Buffer }>>;
true satisfies Same<ReturnType<typeof errnoName>, string | undefined>;
true satisfies Same<typeof constants.IPC_CREAT, 512>;
// @ts-expect-error a segment's size is a number of bytes
shmget(key, '4096', 0);

// The classes: methods that can wait return promises; their Sync forms block.
const queue = MessageQueue.create();
true satisfies Same<ReturnType<typeof queue.receive>, Promise<Message>>;
true satisfies Same<ReturnType<typeof queue.receiveSync>, Message>;
true satisfies Same<ReturnType<typeof SemaphoreSet.open>, Promise<SemaphoreSet>>;
true satisfies Same<ReturnType<typeof SemaphoreSet.openSync>, SemaphoreSet>;
true satisfies Same<ReturnType<Mutex['lock']>, Promise<MutexGuard>>;
function locked(mutex: Mutex): boolean {
  using guard = mutex.lockSync();
  return guard.locked;
}
locked(Mutex.createSync());
// @ts-expect-error an object's id is read-only
queue.id = 1;
true satisfies Same<ReturnType<typeof futex.wait>, 'ok' | 'not-equal' | 'timed-out'>;
true satisfies Same<ReturnType<typeof futex.waitAsync>, Promise<'ok' | 'not-equal' | 'timed-out'>>;
`;

const commonJsConsumer = `
import kernelIpc = require('kernel-ipc');
import kernelIpcPromises = require('kernel-ipc/promises');

const attached: Buffer = kernelIpc.shmat(kernelIpc.shmget(kernelIpc.IPC_PRIVATE, 4096, 0o600));
const received: Promise<{ type: number; data: Buffer }> = kernelIpcPromises.msgrcv(0, 64);
// @ts-expect-error a segment's size is a number of bytes
kernelIpc.shmget(kernelIpc.IPC_PRIVATE, '4096', 0o600);
`;

// A consumer of kernel-ipc/promises alone, which gets Node's types from that entry's declarations.
const promisesConsumer = `
import { msgrcv } from 'kernel-ipc/promises';

const received: Promise<{ type: number; data: Buffer }> = msgrcv(0, 64);
// @ts-expect-error a queue id is a number
msgrcv('0', 64);
`;

describe('TypeScript consumers', function () {
  this.timeout(30000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kernel-ipc-types-'));
    mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
    symlinkSync(packageRoot, join(dir, 'node_modules', 'kernel-ipc'));
    symlinkSync(join(packageRoot, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs `typescript` (a package in our node_modules) on a project of `sources` in dir/name. */
  function typeCheck(typescript: string, name: string, compilerOptions: object, sources: Record<string, string>): void {
    const project = join(dir, name);
    mkdirSync(project);
    for (const [file, source] of Object.entries(sources)) writeFileSync(join(project, file), source);
    const tsconfig = { compilerOptions: { strict: true, noEmit: true, ...compilerOptions }, files: Object.keys(sources) };
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(tsconfig));
    const tsc = join(packageRoot, 'node_modules', typescript, 'bin', 'tsc');
    const { status, stdout, stderr } = spawnSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' });
    assert.equal(status, 0, stdout + stderr);
  }

  // The TypeScript 6 and 7 cases leave types unset: their default is [], no @types package, so
  // they also check that the declarations bring in Node's types themselves.
  it('nodenext, TypeScript 7: import from an ES module, import = require from a CommonJS one', () => {
    typeCheck('typescript', 'nodenext', { module: 'nodenext', moduleResolution: 'nodenext' }, {
      'consumer.mts': esmConsumer,
      'consumer.cts': commonJsConsumer,
    });
  });

  it('nodenext, TypeScript 7: kernel-ipc/promises alone', () => {
    typeCheck('typescript', 'promises', { module: 'nodenext', moduleResolution: 'nodenext' }, {
      'consumer.mts': promisesConsumer,
    });
  });

  it('nodenext, TypeScript 6, whose default types is [] too', () => {
    typeCheck('typescript6', 'nodenext6', { module: 'nodenext', moduleResolution: 'nodenext' }, {
      'consumer.mts': esmConsumer,
      'consumer.cts': commonJsConsumer,
    });
  });

  it('bundler, TypeScript 7', () => {
    typeCheck('typescript', 'bundler', { module: 'preserve', moduleResolution: 'bundler' }, { 'consumer.ts': esmConsumer });
  });

  // node10 ignores package.json exports: typesVersions leads it to kernel-ipc/promises. TypeScript 7
  // no longer has node10. TypeScript 5's default target, ES5, rejects the #private that tsc writes
  // into class declarations.
  it('node10, TypeScript 5', () => {
    typeCheck('typescript5', 'node10', { module: 'commonjs', moduleResolution: 'node', target: 'es2022' }, {
      'consumer.ts': esmConsumer,
    });
  });
});
