// The SharedMemory class: create/open, read/write, attributes, detach and remove.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { IPC_PRIVATE, IPC_STAT, ReadOnlyBuffer, SharedMemory, shmctl, shmdt } from '../lib';
import { packageRoot } from '../lib/native';
import { assertErrno, assertRecent, randomKey, useShmCleanup, usePeers } from './helpers';

describe('SharedMemory', function () {
  this.timeout(20000);
  const ipc = useShmCleanup();
  const startPeer = usePeers();

  /** Creates through the class and registers the segment and attachment for cleanup. */
  function create(...args: Parameters<typeof SharedMemory.create>): SharedMemory<Buffer> {
    const shm = SharedMemory.create(...args);
    ipc.track(shm.id);
    ipc.keep(shm.buffer);
    return shm;
  }

  it('creates with IPC_EXCL and mode 0600 by default, attached and zeroed', () => {
    const key = randomKey();
    const shm = create(key, 1000);
    assert.equal(shm.key, key);
    assert.equal(shm.size, 1000);
    assert.equal(shm.mode, 0o600);
    assert.equal(shm.attached, true);
    assert.equal(shm.readOnly, false);
    assert.equal(shm.buffer.length, 1000);
    assert.ok(shm.buffer.every((byte) => byte === 0));
    assertErrno(() => SharedMemory.create(key, 1000), 'EEXIST', 'shmget');
  });

  it('fills a segment it creates, and never one it merely opens', () => {
    const key = randomKey();
    const first = create(key, 16, { fill: 'ab', mode: 0o640 });
    assert.equal(first.buffer.toString(), 'abababababababab');
    assert.equal(first.mode, 0o640);
    first.write('keep');
    const second = create(key, 16, { exclusive: false, fill: 0 });
    assert.equal(second.id, first.id);
    assert.equal(second.buffer.toString('utf8', 0, 6), 'keepab');
    const third = create(IPC_PRIVATE, 4, { fill: 0xff });
    assert.deepEqual([...third.buffer], [255, 255, 255, 255]);
  });

  it('opens by key, writable or read-only', () => {
    const key = randomKey();
    const owner = create(key, 64);
    owner.write('shared text', 10);
    const writer = SharedMemory.open(key);
    ipc.keep(writer.buffer);
    assert.equal(writer.id, owner.id);
    writer.write('X', 10);
    const reader = SharedMemory.open(key, { readOnly: true });
    ipc.keep(reader.buffer);
    assert.ok(reader.buffer instanceof ReadOnlyBuffer);
    assert.equal(reader.readOnly, true);
    assert.equal(reader.buffer.toString('utf8', 10, 21), 'Xhared text');
    assert.equal(reader.read(10, 3).toString(), 'Xha');
    assert.throws(() => (reader as unknown as SharedMemory<Buffer>).write('no'), { code: 'ERR_INVALID_STATE', message: /read-only/ });
    assertErrno(() => SharedMemory.open(randomKey()), 'ENOENT', 'shmget');
  });

  it('reads copies and writes with bounds checks', () => {
    const shm = create(IPC_PRIVATE, 8);
    assert.equal(shm.write('abc', 5), 3);
    assert.equal(shm.write(new Uint16Array([0x4241])), 2);
    assert.equal(shm.write(new DataView(new Uint8Array([0x43]).buffer), 2), 1);
    const copy = shm.read();
    assert.equal(copy.toString('latin1'), 'ABC\0\0abc');
    shm.buffer[0] = 0x7a;
    assert.equal(copy[0], 0x41, 'read() copies');
    assert.equal(shm.read(5).toString(), 'abc');
    assert.equal(shm.read(8).length, 0);
    assert.throws(() => shm.write('abcd', 5), { name: 'RangeError', message: /"data.length"/ });
    assert.throws(() => shm.write('a', 9), { name: 'RangeError', message: /"offset"/ });
    assert.throws(() => shm.read(9), { name: 'RangeError', message: /"offset"/ });
    assert.throws(() => shm.read(2, 7), { name: 'RangeError', message: /"length"/ });
    assert.throws(() => shm.write(5 as unknown as string), { name: 'TypeError', message: /"data"/ });
    assert.equal(shm.read().toString('latin1'), 'zBC\0\0abc', 'failed writes wrote nothing');
  });

  it('reads its attributes from the kernel', () => {
    const shm = create(IPC_PRIVATE, 100);
    assert.equal(shm.uid, process.getuid!());
    assert.equal(shm.gid, process.getgid!());
    assert.equal(shm.cuid, process.getuid!());
    assert.equal(shm.cgid, process.getgid!());
    assert.equal(shm.creatorPid, process.pid);
    assert.equal(shm.lastPid, process.pid);
    assert.equal(shm.attachCount, 1);
    assertRecent(shm.attachTime);
    assertRecent(shm.changeTime);
    assert.equal(shm.detachTime, null);
    assert.deepEqual(shm.stat(), shmctl(shm.id, IPC_STAT));

    shm.mode = 0o644;
    shm.uid = 65534;
    shm.gid = 65534;
    assert.deepEqual([shm.mode, shm.uid, shm.gid], [0o644, 65534, 65534]);
    assert.throws(() => {
      shm.mode = 0o1777;
    }, { name: 'RangeError', message: /"mode"/ });
  });

  it('detaches once (idempotent), after which its views are empty and buffer throws', () => {
    const shm = create(IPC_PRIVATE, 32);
    const view = shm.buffer.subarray(4);
    shm.detach();
    shm.detach();
    assert.equal(shm.attached, false);
    assert.equal(view.length, 0);
    assert.equal(shm.attachCount, 0);
    assert.ok(shm.detachTime instanceof Date);
    assert.throws(() => shm.buffer, { code: 'ERR_INVALID_STATE', message: /detached/ });
    assert.throws(() => shm.read(), { code: 'ERR_INVALID_STATE' });
    assert.throws(() => shm.write('x'), { code: 'ERR_INVALID_STATE' });
  });

  it('attaches again after detach(), in the mode it was opened in', () => {
    const shm = create(IPC_PRIVATE, 32);
    shm.write('kept');
    const first = shm.buffer;
    assert.equal(shm.attach(), first, 'attached: the buffer it has');
    shm.detach();
    const again = shm.attach();
    ipc.keep(again);
    assert.equal(shm.attached, true);
    assert.equal(shm.buffer, again);
    assert.notEqual(again, first);
    assert.equal(again.toString('utf8', 0, 4), 'kept');
    assert.equal(shm.attachCount, 1);
    const reader = SharedMemory.open({ id: shm.id }, { readOnly: true });
    ipc.keep(reader.buffer);
    reader.detach();
    const view = reader.attach();
    ipc.keep(view);
    assert.ok(view instanceof ReadOnlyBuffer);
    assert.equal(view.toString('utf8', 0, 4), 'kept');
    // A segment gone is the kernel's error, naming it.
    shm.detach();
    reader.detach();
    shm.remove();
    assert.throws(() => shm.attach(), (error: Error & { id?: number }) => {
      assert.match(error.message, new RegExp(`^EINVAL: invalid argument, shmat id ${shm.id}$`));
      return error.id === shm.id;
    });
    assert.equal(shm.attached, false);
  });

  it('notices a detach made with shmdt() on its buffer', () => {
    const shm = create(IPC_PRIVATE, 32);
    const buffer = shm.buffer;
    shmdt(buffer);
    assert.equal(shm.attached, false);
    assert.throws(() => shm.write(buffer), { code: 'ERR_INVALID_STATE' });
    shm.detach();
    assert.throws(() => shm.buffer, { code: 'ERR_INVALID_STATE' });
  });

  it('removes a segment it created when the fill fails', () => {
    const key = randomKey();
    assert.throws(() => SharedMemory.create(key, 8, { fill: new Uint8Array(0) }), { code: 'ERR_INVALID_ARG_VALUE' });
    assertErrno(() => SharedMemory.open(key), 'ENOENT', 'shmget');
  });

  it('is disposable: `using` detaches at the end of the block', () => {
    let view: Buffer;
    let id: number;
    {
      using shm = create(IPC_PRIVATE, 32);
      id = shm.id;
      view = shm.buffer;
      assert.equal(view.length, 32);
    }
    assert.equal(view.length, 0);
    assert.equal(shmctl(id, IPC_STAT).nattch, 0);
  });

  it('remove() marks the segment: it goes when the last attachment does', () => {
    const key = randomKey();
    const shm = create(key, 32);
    shm.remove();
    // The kernel forgets the key; the object remembers what it was created with.
    assert.equal(shm.stat().key, IPC_PRIVATE);
    assert.equal(shm.key, key);
    shm.write('still usable');
    assertErrno(() => SharedMemory.open(key), 'ENOENT', 'shmget');
    shm.detach();
    assertErrno(() => shm.size, 'EINVAL', 'shmctl');
  });

  it('shares one segment between two Node processes opened by key', async () => {
    const key = randomKey();
    const shm = create(key, 4096);
    shm.write('hello from the parent');
    const peer = startPeer();
    const handle = await peer.request<number>('openSharedMemory', key, false);
    assert.equal(await peer.request('read', handle, 0, 21), 'hello from the parent');
    await peer.request('write', handle, 100, 'hello from the child');
    assert.equal(shm.read(100, 20).toString(), 'hello from the child');
    assert.equal(shm.attachCount, 2);
    assert.equal(shm.lastPid, peer.pid);
    const readOnly = await peer.request<number>('openSharedMemory', key, true);
    await assert.rejects(peer.request('write', readOnly, 0, 'x'), { name: 'TypeError' });
  });

  it('rejects bad options', () => {
    assert.throws(() => SharedMemory.create(IPC_PRIVATE, 0), { name: 'RangeError', message: /"size"/ });
    assert.throws(() => SharedMemory.create(IPC_PRIVATE, 8, { mode: 0o1000 }), { name: 'RangeError', message: /"options.mode"/ });
    assert.throws(() => SharedMemory.create(IPC_PRIVATE, 8, { exclusive: 1 as unknown as boolean }), { name: 'TypeError', message: /"options.exclusive"/ });
    assert.throws(() => SharedMemory.create(IPC_PRIVATE, 8, { fill: {} as string }), { name: 'TypeError', message: /"options.fill"/ });
    assert.throws(() => SharedMemory.create(IPC_PRIVATE, 8, 'x' as unknown as object), { name: 'TypeError', message: /"options"/ });
    assert.throws(() => SharedMemory.open(1, { readOnly: 'yes' as unknown as true }), { name: 'TypeError', message: /"options.readOnly"/ });
  });

  it('npm run demo: a second Node process verifies, in place, what the first wrote', async () => {
    const demo = execFile(process.execPath, [join(packageRoot, 'dist', 'examples', 'demo.js')], { encoding: 'utf8', timeout: 8000 });
    let stdout = '';
    demo.stdout!.on('data', (text: string) => {
      stdout += text;
      // Removed by the demo itself; tracked in case it fails before it does.
      const made = /segment (\d+)/.exec(stdout);
      if (made) ipc.track(Number(made[1]));
    });
    assert.deepEqual(await once(demo, 'exit'), [0, null]);
    assert.match(stdout, /hashed 16777216 bytes in place .*: match/);
    assert.match(stdout, /exited with 0 and wrote back "verified"/);
  });
});
