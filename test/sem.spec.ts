// The sem* mirror: semget, semop (and semtimedop), semctl, across processes and languages.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  GETALL, GETNCNT, GETPID, GETVAL, GETZCNT, IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_NOWAIT, IPC_PRIVATE, IPC_RMID, IPC_SET,
  IPC_STAT, semctl, semget, semop, SEMVMX, SEM_INFO, SEM_STAT, SEM_UNDO, SETALL, SETVAL,
} from '../lib';
import {
  assertErrno, assertIpcError, assertRecent, compileC, fuzzInPrivateNamespace, itAsRoot, randomKey, usePeers, useSemCleanup, waitUntil,
} from './helpers';

const run = promisify(execFile);

describe('semget', () => {
  const sem = useSemCleanup();

  it('creates a set under a key and opens it again by key', () => {
    const key = randomKey();
    const id = sem.semget(key, 3, IPC_CREAT | IPC_EXCL | 0o640);
    assert.equal(semget(key, 0, 0), id);
    assert.equal(semget(key, 3, IPC_CREAT | 0o600), id);
    const stat = semctl(id, 0, IPC_STAT);
    assert.equal(stat.key, key);
    assert.equal(stat.nsems, 3);
    assert.equal(stat.mode & 0o777, 0o640);
    assert.deepEqual(semctl(id, 0, GETALL), [0, 0, 0]);
  });

  it('gives a new set for every IPC_PRIVATE', () => {
    assert.notEqual(sem.set(), sem.set());
  });

  it('fails with EEXIST under IPC_EXCL, ENOENT without IPC_CREAT, EINVAL for a bad count', () => {
    const key = randomKey();
    sem.semget(key, 2, IPC_CREAT | IPC_EXCL | 0o600);
    assertErrno(() => semget(key, 2, IPC_CREAT | IPC_EXCL | 0o600), 'EEXIST', 'semget');
    assertErrno(() => semget(randomKey(), 1, 0o600), 'ENOENT', 'semget');
    // More semaphores than the set has, and a new set of none or of more than semmsl.
    assertErrno(() => semget(key, 3, 0), 'EINVAL', 'semget');
    assertErrno(() => semget(IPC_PRIVATE, 0, 0o600), 'EINVAL', 'semget');
    assertErrno(() => semget(IPC_PRIVATE, semctl(0, 0, IPC_INFO).semmsl + 1, 0o600), 'EINVAL', 'semget');
  });

  it('rejects bad arguments with TypeError or RangeError naming them', () => {
    assert.throws(() => semget('1' as unknown as number, 1, 0), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /"key"/ });
    assert.throws(() => semget(IPC_PRIVATE, -1, 0o600), { name: 'RangeError', message: /"nsems"/ });
    assert.throws(() => semget(IPC_PRIVATE, 1.5, 0o600), { name: 'RangeError', message: /"nsems"/ });
    assert.throws(() => semget(IPC_PRIVATE, 1, IPC_NOWAIT), { name: 'TypeError', message: /'flags' must hold only/ });
  });
});

describe('semop', () => {
  const sem = useSemCleanup();
  const peer = usePeers();

  it('applies the operations in order, and waits for zero with op 0', () => {
    const id = sem.set(2);
    semop(id, [{ num: 0, op: 2 }, { num: 1, op: 5 }, { num: 0, op: -1 }]);
    assert.deepEqual(semctl(id, 0, GETALL), [1, 5]);
    semop(id, [{ num: 1, op: -5 }, { num: 1, op: 0 }]);
    assertErrno(() => semop(id, [{ num: 0, op: 0, flags: IPC_NOWAIT }]), 'EAGAIN', 'semop');
    assert.equal(semctl(id, 0, GETPID), process.pid);
  });

  it('applies all of the operations or none of them', async () => {
    const id = sem.set(2);
    semctl(id, 0, SETALL, [1, 0]);
    assertErrno(() => semop(id, [{ num: 0, op: -1 }, { num: 1, op: -1, flags: IPC_NOWAIT }]), 'EAGAIN', 'semop');
    assert.deepEqual(semctl(id, 0, GETALL), [1, 0]);
    // Another process waits for both: semaphore 0 alone is not enough, and it is not taken alone.
    const other = peer();
    const both = other.request('semop', id, [{ num: 0, op: -1 }, { num: 1, op: -1 }]);
    await waitUntil(() => semctl(id, 1, GETNCNT) === 1);
    await sleep(20);
    assert.deepEqual(semctl(id, 0, GETALL), [1, 0]);
    semop(id, [{ num: 1, op: 1 }]);
    await both;
    assert.deepEqual(semctl(id, 0, GETALL), [0, 0]);
    assert.equal(semctl(id, 1, GETPID), other.pid);
  });

  it('wakes a process waiting in another process', async () => {
    const id = sem.set();
    const other = peer();
    const taken = other.request('semop', id, [{ num: 0, op: -2 }]);
    await waitUntil(() => semctl(id, 0, GETNCNT) === 1);
    semop(id, [{ num: 0, op: 1 }]);
    await sleep(20);
    assert.equal(semctl(id, 0, GETNCNT), 1, 'one is not enough for -2');
    semop(id, [{ num: 0, op: 1 }]);
    await taken;
    assert.equal(semctl(id, 0, GETVAL), 0);
  });

  it('gives up with EAGAIN once timeoutMs has passed (semtimedop)', async () => {
    const id = sem.set();
    const started = performance.now();
    assertErrno(() => semop(id, [{ num: 0, op: -1 }], 50), 'EAGAIN', 'semtimedop');
    assert.ok(performance.now() - started >= 45, 'it waited');
    assertErrno(() => semop(id, [{ num: 0, op: -1 }], 0), 'EAGAIN', 'semtimedop');
    assertErrno(() => semop(id, [{ num: 0, op: -1 }], 0.5), 'EAGAIN', 'semtimedop');
    semop(id, [{ num: 0, op: 1 }], 0);
    semop(id, [{ num: 0, op: -1 }], 0);
    // Released by another process before the time is up: it succeeds.
    const other = peer();
    const taken = other.request('semop', id, [{ num: 0, op: -1 }], 10000);
    await waitUntil(() => semctl(id, 0, GETNCNT) === 1);
    semop(id, [{ num: 0, op: 1 }]);
    await taken;
    assert.equal(semctl(id, 0, GETVAL), 0);
  });

  it('undoes SEM_UNDO operations when their process exits, even by SIGKILL', async () => {
    const id = sem.set(2);
    semctl(id, 0, SETALL, [3, 3]);
    const other = peer();
    await other.request('semop', id, [{ num: 0, op: -2, flags: SEM_UNDO }, { num: 1, op: -2 }]);
    assert.deepEqual(semctl(id, 0, GETALL), [1, 1]);
    await other.stop();
    assert.deepEqual(semctl(id, 0, GETALL), [3, 1]);
  });

  it('fails with EFBIG for a semaphore the set does not have, ERANGE above SEMVMX, E2BIG past semopm', () => {
    const id = sem.set(2);
    assertErrno(() => semop(id, [{ num: 2, op: 1 }]), 'EFBIG', 'semop');
    semctl(id, 0, SETVAL, SEMVMX);
    assertErrno(() => semop(id, [{ num: 0, op: 1 }]), 'ERANGE', 'semop');
    const tooMany = Array.from({ length: semctl(0, 0, IPC_INFO).semopm + 1 }, () => ({ num: 1, op: 0 }));
    assertErrno(() => semop(id, tooMany), 'E2BIG', 'semop');
    assert.deepEqual(semctl(id, 0, GETALL), [SEMVMX, 0]);
  });

  it('fails with EIDRM in a process waiting on a set that is removed', async () => {
    const id = sem.set();
    const other = peer();
    const waiting = other.request('semop', id, [{ num: 0, op: -1 }]).catch((error: unknown) => error);
    await waitUntil(() => semctl(id, 0, GETNCNT) === 1);
    semctl(id, 0, IPC_RMID);
    assertIpcError(await waiting, 'EIDRM', 'semop');
  });

  itAsRoot('fail with EACCES in a process without permission on a 0600 set', 'starting a process as another user', async () => {
    const key = randomKey();
    const id = sem.semget(key, 1, IPC_CREAT | IPC_EXCL | 0o600);
    const other = peer();
    assert.deepEqual(await other.request('dropPrivileges', 65534, 65534), [65534, 65534]);
    await assert.rejects(other.request('semget', key, 0, 0o600), { code: 'EACCES', syscall: 'semget' });
    await assert.rejects(other.request('semop', id, [{ num: 0, op: 1 }]), { code: 'EACCES', syscall: 'semop' });
    await assert.rejects(other.request('semctl', id, 0, GETVAL), { code: 'EACCES', syscall: 'semctl' });
    await assert.rejects(other.request('semctl', id, 0, SETVAL, 1), { code: 'EACCES', syscall: 'semctl' });
    await assert.rejects(other.request('openSemaphoreSet', key), { code: 'EACCES' });
    semctl(id, 0, IPC_SET, { mode: 0o666 });
    await other.request('semop', id, [{ num: 0, op: 1 }]);
    assert.equal(semctl(id, 0, GETVAL), 1);
  });

  it('rejects bad operations with TypeError or RangeError naming them, and applies none', () => {
    const id = sem.set();
    const bad: Array<[unknown, RegExp]> = [
      [undefined, /"ops"/], [{ num: 0, op: 1 }, /"ops"/], [[], /'ops' must hold at least one/], [[null], /"ops\[0\]"/],
      [[{ num: 0, op: 1 }, 5], /"ops\[1\]"/], [[{ num: -1, op: 1 }], /"ops\[0\].num"/], [[{ num: 65536, op: 1 }], /"ops\[0\].num"/],
      [[{ num: 0, op: 32768 }], /"ops\[0\].op"/], [[{ num: 0, op: -32769 }], /"ops\[0\].op"/], [[{ num: 0, op: 1.5 }], /"ops\[0\].op"/],
      [[{ num: 0, op: '1' }], /"ops\[0\].op"/], [[{ num: 0 }], /"ops\[0\].op"/],
      [[{ num: 0, op: 1, flags: 1 }], /'ops\[0\].flags' must hold only IPC_NOWAIT and SEM_UNDO/],
    ];
    for (const [ops, message] of bad) assert.throws(() => semop(id, ops as never), { message }, String(message));
    assert.throws(() => semop(-1, [{ num: 0, op: 1 }]), { name: 'RangeError', message: /"semid"/ });
    assert.throws(() => semop(id, [{ num: 0, op: 1 }], -1), { name: 'RangeError', message: /"timeoutMs"/ });
    assert.throws(() => semop(id, [{ num: 0, op: 1 }], NaN), { name: 'RangeError', message: /"timeoutMs"/ });
    assert.throws(() => semop(id, [{ num: 0, op: 1 }], '5' as never), { name: 'TypeError', message: /"timeoutMs"/ });
    assert.throws(() => semop(id, new Array(65536)), { name: 'RangeError', message: /"ops.length"/ });
    assert.equal(semctl(id, 0, GETVAL), 0);
    assert.equal(semctl(id, 0, IPC_STAT).otime, 0);
  });

  it('reads each operation once, so getters that make semops of their own change nothing', () => {
    const id = sem.set(3);
    let reads = 0;
    const sneaky = {
      get num() {
        reads++;
        // Its own semop, many operations long, made while the outer one is being read.
        semop(id, Array.from({ length: 20 }, () => ({ num: 2, op: 1 })));
        return 1;
      },
      op: 1,
    };
    semop(id, [{ num: 0, op: 1 }, sneaky]);
    assert.equal(reads, 1);
    assert.deepEqual(semctl(id, 0, GETALL), [1, 1, 20]);
  });

  it('serves every copy of the module (a cleared require cache) from the array the addon reads', () => {
    const id = sem.set(2);
    const path = require.resolve('../lib/sem');
    const cached = require.cache[path];
    const first = require(path) as typeof import('../lib/sem');
    delete require.cache[path];
    try {
      const second = require(path) as typeof import('../lib/sem');
      assert.notEqual(second, first);
      second.semop(id, Array.from({ length: 30 }, () => ({ num: 1, op: 1 })));
      first.semop(id, [{ num: 0, op: 1 }]);
      second.semop(id, [{ num: 1, op: -10 }]);
    } finally {
      require.cache[path] = cached;
    }
    assert.deepEqual(semctl(id, 0, GETALL), [1, 20]);
  });
});

describe('semctl', () => {
  const sem = useSemCleanup();
  const peer = usePeers();

  it('gets and sets one value or all of them', () => {
    const id = sem.set(3);
    semctl(id, 1, SETVAL, 7);
    assert.equal(semctl(id, 1, GETVAL), 7);
    assert.deepEqual(semctl(id, 0, GETALL), [0, 7, 0]);
    semctl(id, 0, SETALL, [1, 2, SEMVMX]);
    assert.deepEqual(semctl(id, 0, GETALL), [1, 2, SEMVMX]);
    assert.equal(semctl(id, 2, GETVAL), SEMVMX);
  });

  it('fails with ERANGE outside 0..SEMVMX, EINVAL for SETALL of the wrong length or a semnum out of range', () => {
    const id = sem.set(2);
    assertErrno(() => semctl(id, 0, SETVAL, SEMVMX + 1), 'ERANGE', 'semctl');
    assertErrno(() => semctl(id, 0, SETVAL, -1), 'ERANGE', 'semctl');
    assertErrno(() => semctl(id, 0, SETALL, [1, SEMVMX + 1]), 'ERANGE', 'semctl');
    assertErrno(() => semctl(id, 0, SETALL, [1, 70000]), 'ERANGE', 'semctl');
    assertErrno(() => semctl(id, 0, SETALL, [1, -1]), 'ERANGE', 'semctl');
    assertErrno(() => semctl(id, 0, SETALL, [1]), 'EINVAL', 'semctl');
    assertErrno(() => semctl(id, 0, SETALL, [1, 2, 3]), 'EINVAL', 'semctl');
    assertErrno(() => semctl(id, 2, GETVAL), 'EINVAL', 'semctl');
    assertErrno(() => semctl(id, 2, SETVAL, 1), 'EINVAL', 'semctl');
    assert.deepEqual(semctl(id, 0, GETALL), [0, 0]);
  });

  it('counts the processes waiting for an increase (GETNCNT) and for zero (GETZCNT)', async () => {
    const id = sem.set(2);
    semctl(id, 1, SETVAL, 1);
    const [a, b, c] = [peer(), peer(), peer()];
    const waits = [
      a.request('semop', id, [{ num: 0, op: -1 }]),
      b.request('semop', id, [{ num: 0, op: -1 }]),
      c.request('semop', id, [{ num: 1, op: 0 }]),
    ];
    await waitUntil(() => semctl(id, 0, GETNCNT) === 2 && semctl(id, 1, GETZCNT) === 1);
    assert.equal(semctl(id, 1, GETNCNT), 0);
    assert.equal(semctl(id, 0, GETZCNT), 0);
    semctl(id, 0, SETALL, [2, 0]);
    await Promise.all(waits);
    assert.equal(semctl(id, 0, GETNCNT), 0);
    assert.equal(semctl(id, 1, GETZCNT), 0);
  });

  it('reports IPC_STAT with the C field names; otime is set by the first semop', () => {
    const key = randomKey();
    const id = sem.semget(key, 4, IPC_CREAT | IPC_EXCL | 0o640);
    const stat = semctl(id, 0, IPC_STAT);
    assert.deepEqual(Object.keys(stat).sort(), ['cgid', 'ctime', 'cuid', 'gid', 'key', 'mode', 'nsems', 'otime', 'uid']);
    assert.equal(stat.key, key);
    assert.equal(stat.nsems, 4);
    assert.equal(stat.mode & 0o777, 0o640);
    assert.equal(stat.uid, process.getuid!());
    assert.equal(stat.cgid, process.getgid!());
    assert.equal(stat.otime, 0);
    assertRecent(stat.ctime);
    semop(id, [{ num: 3, op: 0 }]);
    assertRecent(semctl(id, 0, IPC_STAT).otime);
  });

  it('changes mode and owner with IPC_SET, keeping what is not given', () => {
    const id = sem.set();
    semctl(id, 0, IPC_SET, { mode: 0o604 });
    semctl(id, 0, IPC_SET, { uid: 65534 });
    const stat = semctl(id, 0, IPC_STAT);
    assert.equal(stat.mode & 0o777, 0o604);
    assert.equal(stat.uid, 65534);
    assert.equal(stat.cuid, process.getuid!());
    assert.throws(() => semctl(id, 0, IPC_SET, { mode: 0o1000 }), { name: 'RangeError', message: /"arg.mode"/ });
  });

  it('gives the limits and usage with IPC_INFO and SEM_INFO, and finds sets with SEM_STAT', () => {
    const id = sem.set(3);
    const limits = semctl(0, 0, IPC_INFO);
    assert.equal(limits.semvmx, SEMVMX);
    assert.ok(limits.semmsl >= 3 && limits.semopm >= 1 && limits.semmni >= 1);
    const usage = semctl(0, 0, SEM_INFO);
    assert.ok(usage.semusz >= 1, 'semusz counts the sets');
    assert.ok(usage.semaem >= 3, 'semaem counts the semaphores');
    let found = false;
    for (let index = 0; index <= usage.highestIndex; index++) {
      try {
        const stat = semctl(index, 0, SEM_STAT);
        if (stat.id === id) found = stat.nsems === 3;
      } catch (error) {
        if ((error as { code?: string }).code !== 'EINVAL') throw error;
      }
    }
    assert.ok(found, 'SEM_STAT found the set by its index');
  });

  it('removes a set with IPC_RMID; the id is then invalid', () => {
    const id = sem.set();
    semctl(id, 0, IPC_RMID);
    assertErrno(() => semctl(id, 0, GETVAL), 'EINVAL', 'semctl');
    assertErrno(() => semop(id, [{ num: 0, op: 1 }]), 'EINVAL', 'semop');
  });

  it('rejects bad arguments with TypeError or RangeError naming them', () => {
    const id = sem.set();
    assert.throws(() => semctl(id, -1, GETVAL), { name: 'RangeError', message: /"semnum"/ });
    assert.throws(() => semctl(id, 0, 99), { name: 'TypeError', message: /'cmd' must be one of the semctl commands/ });
    assert.throws(() => semctl(id, 0, SETVAL, '1' as never), { name: 'TypeError', message: /"arg"/ });
    assert.throws(() => semctl(id, 0, SETVAL, 2 ** 31), { name: 'RangeError', message: /"arg"/ });
    assert.throws(() => semctl(id, 0, SETALL, 1 as never), { name: 'TypeError', message: /"arg"/ });
    assert.throws(() => semctl(id, 0, SETALL, [0.5]), { name: 'RangeError', message: /"arg\[0\]"/ });
    assert.throws(() => semctl(id, 0, SETALL, [5, , 7] as number[]), { name: 'TypeError', message: /"arg\[1\]"/ });
    assert.throws(() => semctl(id, 0, IPC_SET, null as never), { name: 'TypeError', message: /"arg"/ });
  });
});

describe('semaphores shared with C and Perl', function () {
  this.timeout(30000);
  const sem = useSemCleanup();

  // Waits for semaphore 0, adds 2 to semaphore 1 and prints what GETALL says then.
  const cPeer = `
#include <stdio.h>
#include <stdlib.h>
#include <sys/sem.h>
int main(int argc, char **argv) {
  int id = atoi(argv[1]);
  struct sembuf ops[2] = { { 0, -1, 0 }, { 1, 2, 0 } };
  if (semop(id, ops, 2) == -1) { perror("semop"); return 1; }
  unsigned short values[2];
  if (semctl(id, 0, GETALL, values) == -1) { perror("semctl"); return 1; }
  printf("%d %d\\n", values[0], values[1]);
  return 0;
}`;

  it('shares a set with a C program', async () => {
    const id = sem.set(2);
    const program = run(compileC(cPeer), [String(id)]);
    await waitUntil(() => semctl(id, 0, GETNCNT) === 1);
    semop(id, [{ num: 0, op: 1 }]);
    assert.equal((await program).stdout, '0 2\n');
    assert.deepEqual(semctl(id, 0, GETALL), [0, 2]);
    assert.equal(semctl(id, 1, GETPID), program.child.pid);
  });

  it('shares a set with Perl (its semop and semctl builtins)', async () => {
    const id = sem.set(2);
    const script = `
use IPC::SysV qw(GETVAL SETVAL);
my $id = shift;
semop($id, pack("s!*", 0, -1, 0)) or die "semop: $!";
semctl($id, 1, SETVAL, 9) or die "semctl: $!";
print semctl($id, 0, GETVAL, 0), "\\n";
`;
    const program = run('perl', ['-e', script, String(id)]);
    await waitUntil(() => semctl(id, 0, GETNCNT) === 1);
    semctl(id, 0, SETVAL, 5);
    assert.equal((await program).stdout, '4\n');
    assert.deepEqual(semctl(id, 0, GETALL), [4, 9]);
  });
});

describe('fuzz: garbage into every semaphore export', function () {
  this.timeout(60000);
  const newPeer = usePeers();

  it('only ever throws or rejects with Errors, never crashes or blocks (in an IPC namespace of its own)', async () => {
    await fuzzInPrivateNamespace(newPeer, 'sem');
  });
});

