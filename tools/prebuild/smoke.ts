// Every concept once, through the installed package, in one process: what proves a prebuild
// in a runtime it targets (an old glibc, qemu, musl), where the suite's tools may not run.
// Prints one line per concept and "smoke: ok" last; exits non-zero on the first failure.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ipc from 'kernel-ipc';
import { msgrcv } from 'kernel-ipc/promises';

const cleanups: Array<() => void> = [];

async function errors(): Promise<string> {
  // Thrown in the addon as a C++ exception and caught there: needs a working unwinder.
  assert.throws(() => ipc.shmctl(0x7fffff00, ipc.IPC_STAT), { name: 'IpcError', code: 'EINVAL', syscall: 'shmctl' });
  return 'EINVAL from shmctl, as an IpcError';
}

async function sharedMemory(): Promise<string> {
  const shm = ipc.SharedMemory.create(null, 8192);
  cleanups.push(() => shm.remove());
  shm.buffer.write('smoke');
  const again = ipc.SharedMemory.open({ id: shm.id });
  assert.equal(again.buffer.toString('utf8', 0, 5), 'smoke');
  again.detach();
  shm.detach();
  return `segment ${shm.id}`;
}

async function messageQueue(): Promise<string> {
  const queue = ipc.MessageQueue.create();
  cleanups.push(() => queue.remove());
  await queue.send('async', { type: 2 });
  queue.sendSync('sync');
  assert.equal(queue.receiveSync({ type: 1 }).text(), 'sync');
  assert.equal((await queue.receive()).text(), 'async');
  const pending = msgrcv(queue.id, 64, 3);
  setTimeout(() => ipc.msgsnd(queue.id, 3, Buffer.from('waited')), 20);
  assert.equal((await pending).data.toString(), 'waited');
  return `queue ${queue.id}`;
}

async function semaphores(): Promise<string> {
  const mutex = await ipc.Mutex.create();
  cleanups.push(() => mutex.remove());
  const guard = await mutex.lock();
  assert.equal(mutex.held, true);
  guard.unlock();
  const set = await ipc.SemaphoreSet.create(null, { size: 2, initialValue: [0, 1] });
  cleanups.push(() => set.remove());
  const acquired = set.acquire(0);
  setTimeout(() => set.release(0), 20);
  await acquired;
  assert.deepEqual(set.values, [0, 1]);
  return `mutex ${mutex.id}, set ${set.id}`;
}

async function futexes(): Promise<string> {
  const shm = ipc.SharedMemory.create(null, 4096);
  cleanups.push(() => shm.remove());
  const words = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 1);
  assert.equal(ipc.futex.wait(words, 0, 0, { timeout: 5 }), 'timed-out');
  const woken = ipc.futex.waitAsync(words, 0, 0, { timeout: 10_000 });
  setTimeout(() => { Atomics.store(words, 0, 1); ipc.futex.notify(words, 0); }, 20);
  assert.equal(await woken, 'ok');
  shm.detach();
  return 'wait, waitAsync, notify';
}

async function channel(): Promise<string> {
  const writer = await ipc.ChannelWriter.create(null, { capacity: 4096 });
  cleanups.push(() => writer.close());
  const reader = await ipc.ChannelReader.open(writer.key);
  cleanups.push(() => reader.close());
  await writer.connected;
  const received: string[] = [];
  const reading = (async () => {
    for await (const record of reader) {
      received.push(record.toString());
      if (received.length === 1000) break;
    }
  })();
  for (let i = 0; i < 1000; i++) await writer.send(`record ${i}`);
  await reading;
  assert.deepEqual(received, Array.from({ length: 1000 }, (_, i) => `record ${i}`));
  const room = writer.reserveSync(4);
  room.write('sync');
  writer.commit();
  assert.equal(reader.receiveSync({ timeout: 5000 })?.toString(), 'sync');
  return `${received.length + 1} records through key 0x${(writer.key >>> 0).toString(16)}`;
}

async function fifo(directory: string): Promise<string> {
  const path = join(directory, 'fifo');
  // Bun (the musl runtime here) does not read pipes through net.Socket, Node's way and ours.
  if (process.versions.bun !== undefined) {
    ipc.mkfifo(path, 0o600);
    return `${path} made; its streams skipped on Bun`;
  }
  ipc.mkfifo(path, 0o600);
  const reader = ipc.createFifoReader(path);
  const writer = await ipc.openFifoWriter(path, { timeout: 10_000 });
  const data = new Promise<string>((resolve) => reader.once('data', (chunk: Buffer) => resolve(chunk.toString())));
  writer.end('through the fifo');
  assert.equal(await data, 'through the fifo');
  reader.destroy();
  return path;
}

async function signalMask(): Promise<string> {
  ipc.sigprocmask(ipc.SIG_BLOCK, ['SIGUSR2']);
  try {
    process.kill(process.pid, 'SIGUSR2');
    assert.deepEqual(ipc.sigpending(), ['SIGUSR2']);
    for await (const info of ipc.watchSignals(['SIGUSR2'], { timeout: 10_000 })) {
      assert.equal(info.pid, process.pid);
      break;
    }
  } finally {
    ipc.sigprocmask(ipc.SIG_UNBLOCK, ['SIGUSR2']);
  }
  return 'SIGUSR2 held back and taken';
}

/** The files mapped into this process whose names match: which binaries and libraries were loaded. */
function mapped(name: RegExp): string[] {
  const paths = readFileSync('/proc/self/maps', 'utf8').split('\n').map((line) => line.split(/\s+/)[5] ?? '');
  return [...new Set(paths.filter((path) => name.test(path.slice(path.lastIndexOf('/') + 1))))];
}

async function main(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'kernel-ipc-smoke-'));
  cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
  const runtime = process.versions.bun === undefined ? `Node ${process.version}` : `Bun ${process.versions.bun}`;
  console.log(`runtime: ${runtime} ${process.arch}`);
  console.log(`addon: ${mapped(/\.node$/)[0] ?? 'none'}`);
  console.log(`libc: ${mapped(/^(libc[.-]|ld-musl)/)[0] ?? 'none'}`);
  console.log(`libraries: ${mapped(/\.so(\.[\d.]+)?$|\.node$/).join(' ')}`);
  console.log(`ftok: 0x${(ipc.ftok(directory, 1) >>> 0).toString(16)}`);
  const steps: Array<[string, () => Promise<string>]> = [
    ['errors', errors], ['shared memory', sharedMemory], ['message queue', messageQueue], ['semaphores', semaphores],
    ['futex', futexes], ['channel', channel], ['fifo', () => fifo(directory)], ['signal mask', signalMask],
  ];
  for (const [name, step] of steps) console.log(`${name}: ${await step()}`);
}

// Bun lets its process end while a thread-safe function the addon refers again waits; Node
// needs none of this.
const keepAlive = setInterval(() => {}, 1000);
main().then(
  () => console.log('smoke: ok'),
  (error: unknown) => { console.error('smoke: failed:', error); process.exitCode = 1; },
).finally(() => {
  clearInterval(keepAlive);
  for (const cleanup of cleanups.reverse()) {
    try { cleanup(); } catch { /* already gone */ }
  }
});
