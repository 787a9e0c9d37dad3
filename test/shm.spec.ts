// The shm* mirror: shmget, shmat, shmdt, shmctl, across processes and languages.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ftok, IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_PRIVATE, IPC_RMID, IPC_SET, IPC_STAT, shmat, shmctl, shmdt,
  shmget, SHM_INFO, SHM_LOCK, SHM_NORESERVE, SHM_STAT, SHM_UNLOCK,
} from '../lib';
import { assertErrno, assertRecent, compileC, itAsRoot, randomKey, usePeers, useShmCleanup } from './helpers';

const SHM_DEST = 0o1000;
const SHM_LOCKED = 0o2000;

describe('shmget', () => {
  const ipc = useShmCleanup();

  it('creates a segment under a key and opens it again by key', () => {
    const key = randomKey();
    const id = ipc.shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0o600);
    assert.equal(shmget(key, 0, 0), id);
    assert.equal(shmget(key, 4096, IPC_CREAT), id);
  });

  it('accepts keys written as unsigned hex, as ipcs prints them', () => {
    const id = ipc.shmget(0xfedcba98, 16, IPC_CREAT | IPC_EXCL | 0o600);
    assert.equal(shmctl(id, IPC_STAT).key, 0xfedcba98 | 0);
    assert.equal(shmget(0xfedcba98 | 0, 0, 0), id);
  });

  it('gives a new segment for every IPC_PRIVATE', () => {
    const a = ipc.shmget(IPC_PRIVATE, 64, 0o600);
    const b = ipc.shmget(IPC_PRIVATE, 64, 0o600);
    assert.notEqual(a, b);
    assert.equal(shmctl(a, IPC_STAT).key, IPC_PRIVATE);
  });

  it('fails with EEXIST under IPC_EXCL when the key is taken', () => {
    const key = randomKey();
    ipc.shmget(key, 64, IPC_CREAT | IPC_EXCL | 0o600);
    assertErrno(() => shmget(key, 64, IPC_CREAT | IPC_EXCL | 0o600), 'EEXIST', 'shmget');
    assert.throws(() => shmget(key, 64, IPC_CREAT | IPC_EXCL | 0o600), {
      message: `EEXIST: file exists, shmget key 0x${(key >>> 0).toString(16).padStart(8, '0')}`,
      key,
      errno: -17,
    });
  });

  it('fails with ENOENT for a missing key without IPC_CREAT', () => {
    assertErrno(() => shmget(randomKey(), 64, 0o600), 'ENOENT', 'shmget');
  });

  it('fails with EINVAL for bad sizes', () => {
    assertErrno(() => shmget(IPC_PRIVATE, 0, IPC_CREAT | 0o600), 'EINVAL', 'shmget');
    const key = randomKey();
    ipc.shmget(key, 64, IPC_CREAT | IPC_EXCL | 0o600);
    // Opening asks for more than the segment has.
    assertErrno(() => shmget(key, 65, 0), 'EINVAL', 'shmget');
  });

  it('rejects bad arguments with TypeError or RangeError naming them', () => {
    assert.throws(() => shmget('1' as unknown as number, 1, 0), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /"key"/ });
    assert.throws(() => shmget(2 ** 32, 1, 0), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /"key"/ });
    assert.throws(() => shmget(1, -1, 0), { name: 'RangeError', message: /"size"/ });
    assert.throws(() => shmget(1, 2 ** 53, 0), { name: 'RangeError', message: /"size"/ });
    assert.throws(() => shmget(1, NaN, 0), { name: 'RangeError', message: /"size"/ });
    assert.throws(() => shmget(1, 1, -1), { name: 'RangeError', message: /"flags"/ });
    assert.throws(() => shmget(1, 1, undefined as unknown as number), { name: 'TypeError', message: /"flags"/ });
    assert.throws(() => shmget(1, 1, 0o100000), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /'flags'/ });
  });

  it('refuses huge pages without a reservation, which fault with SIGBUS when none are left', () => {
    const SHM_HUGETLB = 0o4000;
    assert.throws(() => shmget(IPC_PRIVATE, 2 ** 21, IPC_CREAT | SHM_HUGETLB | SHM_NORESERVE | 0o600), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE',
      message: /SHM_HUGETLB with SHM_NORESERVE/,
    });
  });
});

describe('shmat and shmdt', () => {
  const ipc = useShmCleanup();

  it('maps the whole segment as a zero-copy Buffer that every attachment sees', () => {
    const id = ipc.shmget(IPC_PRIVATE, 10000, 0o600);
    const a = ipc.shmat(id);
    const b = ipc.shmat(id);
    assert.ok(Buffer.isBuffer(a));
    assert.equal(a.length, 10000);
    assert.equal(a.byteOffset, 0);
    assert.ok(a.every((byte) => byte === 0), 'the kernel hands out zeroed memory');
    a.write('hello', 9995);
    assert.equal(b.toString('utf8', 9995), 'hello');
    b.writeUInt32LE(0xdeadbeef, 0);
    assert.equal(a.readUInt32LE(0), 0xdeadbeef);
    assert.equal(shmctl(id, IPC_STAT).nattch, 2);
  });

  it('detaches every view over an attachment, slices included', () => {
    const id = ipc.shmget(IPC_PRIVATE, 4096, 0o600);
    const buffer = shmat(id);
    buffer.fill(7);
    const slice = buffer.subarray(100, 200);
    const words = new Uint32Array(buffer.buffer, 0, 1024);
    const floats = new Float64Array(buffer.buffer, 8, 4);
    const view = new DataView(buffer.buffer, 16);
    assert.equal(shmctl(id, IPC_STAT).nattch, 1);

    shmdt(slice);

    assert.equal(shmctl(id, IPC_STAT).nattch, 0);
    for (const detached of [buffer, slice, words, floats]) {
      assert.equal(detached.length, 0);
      assert.equal(detached[0], undefined);
    }
    assert.throws(() => view.byteLength, TypeError);
    assert.throws(() => view.getUint8(0), TypeError);
    buffer[0] = 1;
    assert.equal(buffer[0], undefined);
    assert.throws(() => buffer.readUInt8(0), RangeError);
    assert.equal(buffer.toString(), '');
  });

  it('detaches with any view type, and only once (EINVAL after, as in C)', () => {
    const id = ipc.shmget(IPC_PRIVATE, 64, 0o600);
    const handles: Array<(b: Buffer) => ArrayBufferView | ArrayBuffer> = [
      (b: Buffer) => b,
      (b: Buffer) => new DataView(b.buffer),
      (b: Buffer) => new Int16Array(b.buffer),
      (b: Buffer) => b.buffer as ArrayBuffer,
    ];
    for (const make of handles) {
      const buffer = shmat(id);
      const handle = make(buffer);
      shmdt(handle);
      assert.equal(buffer.length, 0);
      assertErrno(() => shmdt(handle), 'EINVAL', 'shmdt');
    }
    assert.equal(shmctl(id, IPC_STAT).nattch, 0);
  });

  it('refuses memory that is not an attachment with EINVAL', () => {
    assertErrno(() => shmdt(Buffer.alloc(10)), 'EINVAL', 'shmdt');
    assertErrno(() => shmdt(Buffer.from('pooled')), 'EINVAL', 'shmdt');
    assertErrno(() => shmdt(new ArrayBuffer(0)), 'EINVAL', 'shmdt');
    assert.throws(() => shmdt({} as Buffer), { name: 'TypeError', message: /"view"/ });
    assert.throws(() => shmdt(new SharedArrayBuffer(8) as unknown as ArrayBuffer), { name: 'TypeError' });
  });

  it('reports errors from shmat', () => {
    const id = ipc.shmget(IPC_PRIVATE, 64, 0o600);
    shmctl(id, IPC_RMID);
    assertErrno(() => shmat(id), 'EINVAL', 'shmat');
    assert.throws(() => shmat(-1), { name: 'RangeError', message: /"shmid"/ });
    assert.throws(() => shmat(1.5), { name: 'RangeError', message: /"shmid"/ });
    assert.throws(() => shmat(0, -1), { name: 'RangeError', message: /"flags"/ });
    assert.throws(() => shmat(id, IPC_CREAT), { name: 'TypeError', message: /'flags'/ });
  });

  it('keeps a segment removed while attached usable until the last detach', () => {
    const id = ipc.shmget(randomKey(), 64, IPC_CREAT | IPC_EXCL | 0o600);
    const buffer = shmat(id);
    shmctl(id, IPC_RMID);
    const stat = shmctl(id, IPC_STAT);
    assert.equal(stat.key, IPC_PRIVATE);
    assert.equal(stat.mode & SHM_DEST, SHM_DEST);
    buffer.write('still here');
    assert.equal(buffer.toString('utf8', 0, 10), 'still here');
    shmdt(buffer);
    assertErrno(() => shmctl(id, IPC_STAT), 'EINVAL', 'shmctl');
  });
});

describe('shmctl', () => {
  const ipc = useShmCleanup();

  it('IPC_STAT returns the C fields without their prefix', () => {
    const key = randomKey();
    const id = ipc.shmget(key, 12345, IPC_CREAT | IPC_EXCL | 0o640);
    ipc.shmat(id);
    const stat = shmctl(id, IPC_STAT);
    assert.deepEqual(Object.keys(stat).sort(), [
      'atime', 'cgid', 'cpid', 'ctime', 'cuid', 'dtime', 'gid', 'key', 'lpid', 'mode', 'nattch', 'segsz', 'uid',
    ]);
    assert.equal(stat.key, key);
    assert.equal(stat.segsz, 12345);
    assert.equal(stat.mode, 0o640);
    assert.equal(stat.uid, process.getuid!());
    assert.equal(stat.gid, process.getgid!());
    assert.equal(stat.cuid, process.getuid!());
    assert.equal(stat.cgid, process.getgid!());
    assert.equal(stat.cpid, process.pid);
    assert.equal(stat.lpid, process.pid);
    assert.equal(stat.nattch, 1);
    assert.equal(stat.dtime, 0);
    for (const time of [stat.atime, stat.ctime]) {
      assertRecent(time);
    }
  });

  it('IPC_SET changes uid, gid and mode, keeping what it is not given', () => {
    const id = ipc.shmget(IPC_PRIVATE, 64, 0o600);
    // The owner may give the segment to another user; it stays its creator's to set.
    const [uid, gid] = [process.getuid!(), process.getgid!()];
    const [otherUid, otherGid] = [uid === 65534 ? 65533 : 65534, gid === 65534 ? 65533 : 65534];
    shmctl(id, IPC_SET, { mode: 0o644 });
    assert.deepEqual(pick(shmctl(id, IPC_STAT)), { uid, gid, mode: 0o644 });
    shmctl(id, IPC_SET, { uid: otherUid });
    assert.deepEqual(pick(shmctl(id, IPC_STAT)), { uid: otherUid, gid, mode: 0o644 });
    shmctl(id, IPC_SET, { gid: otherGid, mode: 0o400 });
    assert.deepEqual(pick(shmctl(id, IPC_STAT)), { uid: otherUid, gid: otherGid, mode: 0o400 });
    assert.throws(() => shmctl(id, IPC_SET, { mode: 0o1000 }), { name: 'RangeError', message: /"buf.mode"/ });
    assert.throws(() => shmctl(id, IPC_SET, { uid: -1 }), { name: 'RangeError', message: /"buf.uid"/ });
    assert.throws(() => shmctl(id, IPC_SET, undefined as unknown as object), { name: 'TypeError', message: /"buf"/ });
  });

  it('SHM_LOCK and SHM_UNLOCK lock the segment in memory', () => {
    const id = ipc.shmget(IPC_PRIVATE, 4096, 0o600);
    shmctl(id, SHM_LOCK);
    assert.equal(shmctl(id, IPC_STAT).mode & SHM_LOCKED, SHM_LOCKED);
    shmctl(id, SHM_UNLOCK);
    assert.equal(shmctl(id, IPC_STAT).mode & SHM_LOCKED, 0);
  });

  it('IPC_INFO returns the system limits', () => {
    const limits = shmctl(0, IPC_INFO);
    const proc = (name: string) => Number(readFileSync(`/proc/sys/kernel/${name}`, 'utf8'));
    assert.equal(limits.shmmax, proc('shmmax'));
    assert.equal(limits.shmall, proc('shmall'));
    assert.equal(limits.shmmni, proc('shmmni'));
    assert.equal(limits.shmmin, 1);
    assert.ok(limits.highestIndex >= 0);
  });

  it('SHM_INFO returns usage, and SHM_STAT finds a segment by table index', () => {
    const id = ipc.shmget(IPC_PRIVATE, 3 * 4096, 0o600);
    ipc.shmat(id).fill(1);
    const usage = shmctl(0, SHM_INFO);
    assert.ok(usage.used_ids >= 1);
    assert.ok(usage.shm_tot >= 3, 'pages of all segments');
    assert.ok(usage.shm_rss >= 3, 'pages resident');
    assert.ok(usage.highestIndex >= 0);
    const found = [];
    for (let index = 0; index <= usage.highestIndex; index++) {
      try {
        const stat = shmctl(index, SHM_STAT);
        if (stat.id === id) found.push(stat);
      } catch (error) {
        // Unused slots of the table.
        if ((error as { code: string }).code !== 'EINVAL') throw error;
      }
    }
    assert.equal(found.length, 1);
    assert.equal(found[0].segsz, 3 * 4096);
  });

  it('IPC_RMID removes the segment; later calls fail with EINVAL', () => {
    const id = shmget(IPC_PRIVATE, 64, 0o600);
    shmctl(id, IPC_RMID);
    assertErrno(() => shmctl(id, IPC_STAT), 'EINVAL', 'shmctl');
    assertErrno(() => shmctl(id, IPC_RMID), 'EINVAL', 'shmctl');
  });

  it('rejects unknown commands and bad ids', () => {
    assert.throws(() => shmctl(0, 99), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /'cmd'/ });
    assert.throws(() => shmctl(0, -1), { name: 'RangeError', message: /"cmd"/ });
    assert.throws(() => shmctl(-5, IPC_STAT), { name: 'RangeError', message: /"shmid"/ });
  });
});

describe('shared memory across processes', function () {
  this.timeout(20000);
  const ipc = useShmCleanup();
  const startPeer = usePeers();

  it('two Node processes attached by key see each other\'s writes', async () => {
    const key = randomKey();
    const id = ipc.shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0o600);
    const buffer = ipc.shmat(id);
    buffer.write('from the parent', 0, 'latin1');

    const peer = startPeer();
    const peerId = await peer.request<number>('shmget', key, 0, 0);
    assert.equal(peerId, id);
    const handle = await peer.request<number>('shmat', peerId, 0);
    assert.equal(await peer.request('read', handle, 0, 15), 'from the parent');
    assert.equal(shmctl(id, IPC_STAT).lpid, peer.pid);
    assert.equal(shmctl(id, IPC_STAT).nattch, 2);

    await peer.request('write', handle, 4096, 'from the child');
    assert.equal(buffer.toString('latin1', 4096, 4096 + 14), 'from the child');

    await peer.request('shmdt', handle);
    assert.equal(shmctl(id, IPC_STAT).nattch, 1);
  });

  itAsRoot('a process that dropped to uid/gid 65534 gets EACCES on a 0600 segment', 'starting a process as another user', async () => {
    const key = randomKey();
    const id = ipc.shmget(key, 64, IPC_CREAT | IPC_EXCL | 0o600);
    const peer = startPeer();
    assert.deepEqual(await peer.request('dropPrivileges', 65534, 65534), [65534, 65534]);
    await assert.rejects(peer.request('shmget', key, 0, 0o600), { code: 'EACCES', syscall: 'shmget', errno: -13 });
    await assert.rejects(peer.request('shmat', id, 0), { code: 'EACCES', syscall: 'shmat', message: `EACCES: permission denied, shmat id ${id}` });
    await assert.rejects(peer.request('shmctl', id, IPC_STAT), { code: 'EACCES', syscall: 'shmctl' });
    await assert.rejects(peer.request('shmctl', id, IPC_RMID), { code: 'EPERM', syscall: 'shmctl' });

    // Readable by others: read-only attach works, writing does not.
    shmctl(id, IPC_SET, { mode: 0o604 });
    ipc.shmat(id).write('public', 0, 'latin1');
    const handle = await peer.request<number>('shmat', id, 0o10000);
    assert.equal(await peer.request('read', handle, 0, 6), 'public');
    await assert.rejects(peer.request('shmat', id, 0), { code: 'EACCES' });
  });

  describe('with other languages', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'kernel-ipc-shm-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('a C program attaches by ftok key, reads our bytes and writes its own', () => {
      const file = join(dir, 'key');
      writeFileSync(file, '');
      const key = ftok(file, 'S'.charCodeAt(0));
      const id = ipc.shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0o600);
      const buffer = ipc.shmat(id);
      buffer.write('node wrote this\0', 0, 'latin1');
      const program = compileC(`
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
int main(int argc, char **argv) {
  int id = shmget(ftok(argv[1], 'S'), 0, 0);
  if (id == -1) { perror("shmget"); return 1; }
  char *memory = shmat(id, NULL, 0);
  if (memory == (void *)-1) { perror("shmat"); return 1; }
  printf("%s", memory);
  strcpy(memory + 2048, "C wrote this");
  return shmdt(memory);
}
`);
      assert.equal(execFileSync(program, [file], { encoding: 'latin1' }), 'node wrote this');
      assert.equal(buffer.toString('latin1', 2048, 2048 + 12), 'C wrote this');
    });

    it('a Perl program reads and writes the segment with shmread/shmwrite', () => {
      const id = ipc.shmget(randomKey(), 256, IPC_CREAT | IPC_EXCL | 0o600);
      const buffer = ipc.shmat(id);
      buffer.write('from node', 0, 'latin1');
      const perl = 'shmread($ARGV[0], my $text, 0, 9) or die $!; print $text; shmwrite($ARGV[0], "from perl", 100, 9) or die $!;';
      assert.equal(execFileSync('perl', ['-e', perl, String(id)], { encoding: 'latin1' }), 'from node');
      assert.equal(buffer.toString('latin1', 100, 109), 'from perl');
    });
  });
});

function pick({ uid, gid, mode }: { uid: number; gid: number; mode: number }) {
  return { uid, gid, mode };
}
