// The msg* mirror: msgget, msgsnd, msgrcv, msgctl, across processes and languages.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import {
  IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_NOWAIT, IPC_PRIVATE, IPC_RMID, IPC_SET, IPC_STAT, MSG_COPY, MSG_EXCEPT, MSG_INFO,
  MSG_NOERROR, MSG_STAT, msgctl, msgget, msgrcv, msgsnd,
} from '../lib';
import {
  assertErrno, assertIpcError, assertRecent, compileC, fuzzInPrivateNamespace, itAsRoot, randomKey, useMsgCleanup, usePeers,
} from './helpers';

const run = promisify(execFile);

describe('msgget', () => {
  const msg = useMsgCleanup();

  it('creates a queue under a key and opens it again by key', () => {
    const key = randomKey();
    const id = msg.msgget(key, IPC_CREAT | IPC_EXCL | 0o600);
    assert.equal(msgget(key, 0), id);
    assert.equal(msgget(key, IPC_CREAT | 0o600), id);
    assert.equal(msgctl(id, IPC_STAT).key, key);
    assert.equal(msgctl(id, IPC_STAT).mode & 0o777, 0o600);
  });

  it('gives a new queue for every IPC_PRIVATE', () => {
    assert.notEqual(msg.queue(), msg.queue());
  });

  it('fails with EEXIST under IPC_EXCL and ENOENT without IPC_CREAT', () => {
    const key = randomKey();
    msg.msgget(key, IPC_CREAT | IPC_EXCL | 0o600);
    assertErrno(() => msgget(key, IPC_CREAT | IPC_EXCL | 0o600), 'EEXIST', 'msgget');
    assert.throws(() => msgget(key, IPC_CREAT | IPC_EXCL | 0o600), { message: `EEXIST: file exists, msgget key 0x${(key >>> 0).toString(16).padStart(8, '0')}`, key, errno: -17 });
    assertErrno(() => msgget(randomKey(), 0o600), 'ENOENT', 'msgget');
  });

  it('rejects bad arguments with TypeError or RangeError naming them', () => {
    assert.throws(() => msgget('1' as unknown as number, 0), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /"key"/ });
    assert.throws(() => msgget(2 ** 32, 0), { name: 'RangeError', message: /"key"/ });
    assert.throws(() => msgget(1, -1), { name: 'RangeError', message: /"flags"/ });
    assert.throws(() => msgget(1, IPC_NOWAIT), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /'flags'/ });
  });
});

describe('msgsnd and msgrcv', () => {
  const msg = useMsgCleanup();
  const peer = usePeers();

  it('carry strings, Buffers and typed arrays as bytes, with their type', () => {
    const id = msg.queue();
    msgsnd(id, 7, 'héllo');
    msgsnd(id, 8, Buffer.from([1, 2, 3]));
    msgsnd(id, 9, new Uint16Array([0x0102, 0x0304]));
    msgsnd(id, 10, new DataView(new Uint8Array([5, 6]).buffer));
    msgsnd(id, Number.MAX_SAFE_INTEGER, '');
    assert.deepEqual(msgrcv(id, 100), { type: 7, data: Buffer.from('héllo') });
    assert.deepEqual(msgrcv(id, 100), { type: 8, data: Buffer.from([1, 2, 3]) });
    assert.deepEqual(msgrcv(id, 100).data, Buffer.from(new Uint16Array([0x0102, 0x0304]).buffer));
    assert.deepEqual(msgrcv(id, 100).data, Buffer.from([5, 6]));
    assert.deepEqual(msgrcv(id, 0), { type: Number.MAX_SAFE_INTEGER, data: Buffer.alloc(0) });
  });

  it('select messages by type as C does', () => {
    const id = msg.queue();
    for (const [type, text] of [[3, 'a'], [1, 'b'], [2, 'c'], [1, 'd'], [5, 'e']] as const) msgsnd(id, type, text);
    const take = (type: number, flags = 0) => {
      const { type: got, data } = msgrcv(id, 10, type, flags | IPC_NOWAIT);
      return `${got}${data}`;
    };
    assert.equal(take(1), '1b'); // the first of type 1
    assert.equal(take(1, MSG_EXCEPT), '3a'); // the first of any other type
    assert.equal(take(-4), '1d'); // the lowest type <= 4, first of those
    assert.equal(take(-4), '2c');
    assertErrno(() => take(-4), 'ENOMSG', 'msgrcv');
    assert.equal(take(0), '5e'); // the first of any type
    assertErrno(() => take(0), 'ENOMSG', 'msgrcv');
  });

  it('fails with E2BIG and keeps a longer message queued, unless MSG_NOERROR truncates it', () => {
    const id = msg.queue();
    msgsnd(id, 1, 'abcdefgh');
    assertErrno(() => msgrcv(id, 4), 'E2BIG', 'msgrcv');
    assert.equal(msgctl(id, IPC_STAT).qnum, 1);
    assert.deepEqual(msgrcv(id, 4, 0, MSG_NOERROR), { type: 1, data: Buffer.from('abcd') });
    assert.equal(msgctl(id, IPC_STAT).qnum, 0);
  });

  it('fail at once with IPC_NOWAIT: ENOMSG when empty, EAGAIN when full', () => {
    const id = msg.queue();
    assertErrno(() => msgrcv(id, 10, 0, IPC_NOWAIT), 'ENOMSG', 'msgrcv');
    msgctl(id, IPC_SET, { qbytes: 8 });
    msgsnd(id, 1, '12345678', IPC_NOWAIT);
    assertErrno(() => msgsnd(id, 1, 'x', IPC_NOWAIT), 'EAGAIN', 'msgsnd');
  });

  it('copy a message by index without removing it with MSG_COPY', function () {
    const id = msg.queue();
    msgsnd(id, 4, 'first');
    msgsnd(id, 6, 'second');
    try {
      assert.deepEqual(msgrcv(id, 10, 1, MSG_COPY | IPC_NOWAIT), { type: 6, data: Buffer.from('second') });
    } catch (error) {
      // Kernels built without CONFIG_CHECKPOINT_RESTORE have no MSG_COPY.
      if ((error as { code?: string }).code === 'ENOSYS') this.skip();
      throw error;
    }
    assert.equal(msgctl(id, IPC_STAT).qnum, 2);
    assertErrno(() => msgrcv(id, 10, 1, MSG_COPY), 'EINVAL', 'msgrcv');
  });

  it('reject bad arguments with TypeError or RangeError naming them', () => {
    const id = msg.queue();
    assert.throws(() => msgsnd(id, 0, 'x'), { name: 'RangeError', message: /"type"/ });
    assert.throws(() => msgsnd(id, 2 ** 53, 'x'), { name: 'RangeError', message: /"type"/ });
    assert.throws(() => msgsnd(id, 1, 5 as unknown as string), { name: 'TypeError', message: /"data"/ });
    assert.throws(() => msgsnd(id, 1, 'x', MSG_NOERROR), { name: 'TypeError', message: /'flags'/ });
    assert.throws(() => msgsnd(-1, 1, 'x'), { name: 'RangeError', message: /"msqid"/ });
    assert.throws(() => msgrcv(id, -1), { name: 'RangeError', message: /"maxBytes"/ });
    assert.throws(() => msgrcv(id, 2 ** 31), { name: 'RangeError', message: /"maxBytes"/ });
    assert.throws(() => msgrcv(id, 1, 0.5), { name: 'RangeError', message: /"type"/ });
    assert.throws(() => msgrcv(id, 1, 0, 0o1000), { name: 'TypeError', message: /'flags'/ });
  });

  it('reach another Node process on the same key, both ways', async () => {
    const key = randomKey();
    const id = msg.msgget(key, IPC_CREAT | IPC_EXCL | 0o600);
    const other = peer();
    const otherId = await other.request<number>('msgget', key, 0);
    assert.equal(otherId, id);
    await other.request('msgsnd', otherId, 3, 'from the peer');
    const received = msgrcv(id, 100, 3);
    assert.equal(received.data.toString(), 'from the peer');
    assert.equal(msgctl(id, IPC_STAT).lspid, other.pid);
    // The peer blocks in msgrcv until this process sends.
    const reply = other.request<{ type: number; data: Uint8Array }>('msgrcv', otherId, 100, 4);
    msgsnd(id, 4, 'from the test');
    const { type, data } = await reply;
    assert.equal(type, 4);
    assert.equal(Buffer.from(data).toString(), 'from the test');
    assert.equal(msgctl(id, IPC_STAT).lrpid, other.pid);
  });

  it('fail with EIDRM in a process blocked on a queue that is removed', async () => {
    const id = msg.queue();
    const other = peer();
    await other.request('msgctl', id, IPC_STAT);
    const blocked = other.request('msgrcv', id, 100, 1).then(() => assert.fail('received'), (error) => error);
    // The peer answers nothing while blocked; removing the queue wakes it with EIDRM.
    await new Promise((resolve) => setTimeout(resolve, 50));
    msgctl(id, IPC_RMID);
    assertIpcError(await blocked, 'EIDRM', 'msgrcv');
  });

  itAsRoot('fail with EACCES in a process without permission on a 0600 queue', 'starting a process as another user', async () => {
    const key = randomKey();
    const id = msg.msgget(key, IPC_CREAT | IPC_EXCL | 0o600);
    const other = peer();
    assert.deepEqual(await other.request('dropPrivileges', 65534, 65534), [65534, 65534]);
    // Opening with flags 0 asks for no permission at all; asking for read and write is refused.
    await assert.rejects(other.request('msgget', key, 0o600), { code: 'EACCES', syscall: 'msgget' });
    await assert.rejects(other.request('msgsnd', id, 1, 'x'), { code: 'EACCES', syscall: 'msgsnd' });
    await assert.rejects(other.request('msgctl', id, IPC_STAT), { code: 'EACCES', syscall: 'msgctl' });
    msgctl(id, IPC_SET, { mode: 0o622 });
    await other.request('msgsnd', id, 1, 'allowed now');
    assert.equal(msgrcv(id, 100).data.toString(), 'allowed now');
  });
});

describe('msgctl', () => {
  const msg = useMsgCleanup();

  it('reports IPC_STAT with the C field names', () => {
    const key = randomKey();
    const id = msg.msgget(key, IPC_CREAT | IPC_EXCL | 0o640);
    msgsnd(id, 1, 'abc');
    msgsnd(id, 2, 'de');
    const stat = msgctl(id, IPC_STAT);
    assert.deepEqual(Object.keys(stat).sort(), [
      'cbytes', 'cgid', 'ctime', 'cuid', 'gid', 'key', 'lrpid', 'lspid', 'mode', 'qbytes', 'qnum', 'rtime', 'stime', 'uid',
    ]);
    assert.equal(stat.key, key);
    assert.equal(stat.mode & 0o777, 0o640);
    assert.equal(stat.uid, process.getuid!());
    assert.equal(stat.qnum, 2);
    assert.equal(stat.cbytes, 5);
    assert.equal(stat.qbytes, msgctl(0, IPC_INFO).msgmnb);
    assert.equal(stat.lspid, process.pid);
    assert.equal(stat.lrpid, 0);
    assert.equal(stat.rtime, 0);
    assertRecent(stat.stime);
    assertRecent(stat.ctime);
  });

  it('changes mode, owner and qbytes with IPC_SET, keeping what is not given', () => {
    const id = msg.queue();
    msgctl(id, IPC_SET, { mode: 0o604, qbytes: 100 });
    let stat = msgctl(id, IPC_STAT);
    assert.equal(stat.mode & 0o777, 0o604);
    assert.equal(stat.qbytes, 100);
    msgctl(id, IPC_SET, { uid: 65534, gid: 65534 });
    stat = msgctl(id, IPC_STAT);
    assert.deepEqual([stat.uid, stat.gid, stat.mode & 0o777, stat.qbytes], [65534, 65534, 0o604, 100]);
    assert.throws(() => msgctl(id, IPC_SET, { qbytes: -1 }), { name: 'RangeError', message: /"buf.qbytes"/ });
    assert.throws(() => msgctl(id, IPC_SET, undefined as unknown as object), { name: 'TypeError', message: /"buf"/ });
  });

  it('gives the limits and usage with IPC_INFO and MSG_INFO, and finds queues with MSG_STAT', () => {
    const id = msg.queue();
    msgsnd(id, 1, 'xyz');
    const limits = msgctl(0, IPC_INFO);
    assert.equal(limits.msgmax, Number(execFileSync('cat', ['/proc/sys/kernel/msgmax'], { encoding: 'utf8' })));
    assert.equal(limits.msgmnb, Number(execFileSync('cat', ['/proc/sys/kernel/msgmnb'], { encoding: 'utf8' })));
    const usage = msgctl(0, MSG_INFO);
    assert.ok(usage.msgpool >= 1 && usage.msgmap >= 1 && usage.msgtql >= 3);
    let found = false;
    for (let index = 0; index <= usage.highestIndex; index++) {
      try {
        if (msgctl(index, MSG_STAT).id === id) found = true;
      } catch (error) {
        if ((error as { code?: string }).code !== 'EINVAL') throw error;
      }
    }
    assert.ok(found);
  });

  it('removes a queue with IPC_RMID; the id is then invalid', () => {
    const id = msgget(IPC_PRIVATE, 0o600);
    msgctl(id, IPC_RMID);
    assertErrno(() => msgctl(id, IPC_STAT), 'EINVAL', 'msgctl');
    assertErrno(() => msgsnd(id, 1, 'x'), 'EINVAL', 'msgsnd');
    assert.throws(() => msgctl(id, 99), { name: 'TypeError', message: /'cmd'/ });
  });
});

describe('message queues shared with C, Python and Perl', function () {
  this.timeout(30000);
  const msg = useMsgCleanup();

  // The layout the README documents: the payload is what follows C's long mtype.
  const cPeer = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <unistd.h>
struct message { long mtype; int mpid; char mtext[256]; };
int main(int argc, char **argv) {
  int id = atoi(argv[1]);
  struct message m = { 7, getpid(), "" };
  strcpy(m.mtext, "hello from C");
  if (msgsnd(id, &m, sizeof m - sizeof(long), 0) == -1) { perror("msgsnd"); return 1; }
  struct message in;
  ssize_t n = msgrcv(id, &in, sizeof in - sizeof(long), 8, 0);
  if (n == -1) { perror("msgrcv"); return 1; }
  printf("%zd %d %s\\n", n, in.mpid, in.mtext);
  return 0;
}`;

  it('exchanges struct messages with a C program', async () => {
    const id = msg.queue();
    const program = run(compileC(cPeer), [String(id)]);
    const { type, data } = msgrcv(id, 1000, 7);
    assert.equal(type, 7);
    assert.equal(data.length, 4 + 256 + 4); // int, char[256], and the struct's tail padding
    assert.equal(data.readInt32LE(0), program.child.pid);
    assert.equal(data.toString('latin1', 4, 4 + 'hello from C'.length), 'hello from C');
    const reply = Buffer.alloc(260);
    reply.writeInt32LE(process.pid, 0);
    reply.write('hello from Node', 4);
    msgsnd(id, 8, reply);
    assert.equal((await program).stdout, `260 ${process.pid} hello from Node\n`);
  });

  it('exchanges messages with Python (ctypes over libc)', async () => {
    const id = msg.queue();
    const script = `
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
class Message(ctypes.Structure):
    _fields_ = [('mtype', ctypes.c_long), ('mtext', ctypes.c_char * 64)]
libc.msgrcv.restype = ctypes.c_ssize_t
qid = int(sys.argv[1])
out = Message(5, b'hello from Python')
if libc.msgsnd(qid, ctypes.byref(out), len(b'hello from Python'), 0) != 0: sys.exit(ctypes.get_errno())
got = Message()
n = libc.msgrcv(qid, ctypes.byref(got), 64, 6, 0)
if n < 0: sys.exit(ctypes.get_errno())
print(got.mtype, got.mtext[:n].decode())
`;
    const program = run('python3', ['-c', script, String(id)]);
    assert.deepEqual(msgrcv(id, 100, 5), { type: 5, data: Buffer.from('hello from Python') });
    msgsnd(id, 6, 'hello from Node');
    assert.equal((await program).stdout, '6 hello from Node\n');
  });

  it('exchanges messages with Perl (its msgsnd and msgrcv builtins)', async () => {
    const id = msg.queue();
    const script = `
my $id = shift;
msgsnd($id, pack("l! a*", 9, "hello from Perl"), 0) or die "msgsnd: $!";
my $in;
msgrcv($id, $in, 100, 10, 0) or die "msgrcv: $!";
my ($type, $text) = unpack("l! a*", $in);
print "$type $text\\n";
`;
    const program = run('perl', ['-e', script, String(id)]);
    assert.deepEqual(msgrcv(id, 100, 9), { type: 9, data: Buffer.from('hello from Perl') });
    msgsnd(id, 10, 'hello from Node');
    assert.equal((await program).stdout, '10 hello from Node\n');
  });
});

describe('fuzz: garbage into every message-queue export', function () {
  this.timeout(60000);
  const newPeer = usePeers();

  it('only ever throws or rejects with Errors, never crashes or blocks (in an IPC namespace of its own)', async () => {
    await fuzzInPrivateNamespace(newPeer, 'msg');
  });
});
