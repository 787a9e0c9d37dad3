// The MessageQueue class: create and open, send and receive (sync, async, iteration), limits
// and attributes.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_PRIVATE, IPC_RMID, IPC_STAT, Message, MessageQueue, msgctl, msgget, msgsnd } from '../lib';
import { assertErrno, assertIpcError, assertRecent, randomKey, useMsgCleanup, usePeers } from './helpers';

describe('MessageQueue', function () {
  this.timeout(20000);
  const msg = useMsgCleanup();
  const peer = usePeers();
  const track = (queue: MessageQueue) => {
    msg.track(queue.id);
    return queue;
  };

  it('creates with IPC_EXCL and mode 0600 by default, and opens by key', () => {
    const key = randomKey();
    const queue = track(MessageQueue.create(key));
    assert.equal(queue.key, key);
    assert.equal(queue.mode, 0o600);
    assertErrno(() => MessageQueue.create(key), 'EEXIST', 'msgget');
    assert.equal(MessageQueue.create(key, { exclusive: false }).id, queue.id);
    assert.equal(MessageQueue.open(key).id, queue.id);
    assertErrno(() => MessageQueue.open(randomKey()), 'ENOENT', 'msgget');
    assert.throws(() => MessageQueue.open(IPC_PRIVATE), { name: 'TypeError', message: /must not be IPC_PRIVATE/ });
    const small = track(MessageQueue.create(IPC_PRIVATE, { mode: 0o640, maxBytes: 100 }));
    assert.deepEqual([small.mode, small.maxBytes, small.key], [0o640, 100, 0]);
    assert.throws(() => MessageQueue.create(IPC_PRIVATE, { mode: 0o1000 }), { name: 'RangeError', message: /"options.mode"/ });
    assert.throws(() => MessageQueue.create(IPC_PRIVATE, { exclusive: 1 as unknown as boolean }), { name: 'TypeError' });
  });

  it('sends strings, Buffers and typed arrays, and receives Buffers with text()', () => {
    const queue = track(MessageQueue.create(IPC_PRIVATE));
    queue.send('héllo');
    queue.send(Buffer.from([1, 2]), { type: 5 });
    queue.send(new Float64Array([1.5]), { type: 3 });
    const first = queue.receive();
    assert.ok(first instanceof Message);
    assert.deepEqual([first.type, first.text(), first.data.length], [1, 'héllo', 6]);
    assert.equal(queue.receive({ type: -4 }).data.readDoubleLE(0), 1.5);
    assert.deepEqual(queue.receive({ type: 5 }).data, Buffer.from([1, 2]));
    assertErrno(() => queue.receive({ block: false }), 'ENOMSG', 'msgrcv');
    queue.maxBytes = 2;
    queue.send('ab', { block: false });
    assertErrno(() => queue.send('c', { block: false }), 'EAGAIN', 'msgsnd');
    assert.throws(() => queue.send('x', { type: 0 }), { name: 'RangeError', message: /"options.type"/ });
  });

  it('receives messages of any size up to the system maximum without truncating', () => {
    const queue = track(MessageQueue.create(IPC_PRIVATE));
    const max = MessageQueue.maxMessageSize;
    assert.equal(max, msgctl(0, IPC_INFO).msgmax);
    const big = Buffer.alloc(max, 7);
    queue.send(big);
    assert.deepEqual(queue.receive().data, big);
  });

  it('refuses messages over the system maximum or the queue size, naming the limit', async () => {
    const queue = track(MessageQueue.create(IPC_PRIVATE));
    const max = MessageQueue.maxMessageSize;
    queue.maxBytes = max * 2;
    assert.throws(() => queue.send(Buffer.alloc(max + 1)), { name: 'RangeError', message: /maximum message size, kernel.msgmax/ });
    await assert.rejects(queue.sendAsync(Buffer.alloc(max + 1)), { name: 'RangeError', message: /kernel.msgmax/ });
    // Over both limits: msgmax is the one that holds, whatever the queue's size.
    assert.throws(() => queue.send(Buffer.alloc(max * 2 + 1)), { name: 'RangeError', message: new RegExp(`at most ${max} bytes .*kernel.msgmax`) });
    queue.maxBytes = 10;
    assert.throws(() => queue.send(Buffer.alloc(11)), { name: 'RangeError', message: /at most 10 bytes \(the queue's maxBytes\)/ });
    // Not waiting, the same: EAGAIN would say "try again", and that never helps.
    assert.throws(() => queue.send(Buffer.alloc(11), { block: false }), { name: 'RangeError', message: /at most 10 bytes \(the queue's maxBytes\)/ });
    queue.send(Buffer.alloc(10));
    assertErrno(() => queue.send(Buffer.alloc(1), { block: false }), 'EAGAIN', 'msgsnd');
    assert.equal(queue.receive().data.length, 10);
    await assert.rejects(queue.sendAsync(Buffer.alloc(11)), { name: 'RangeError', message: /queue's maxBytes/ });
    assert.equal(queue.currentMessages, 0);
  });

  it('sends and receives without blocking the event loop', async () => {
    const queue = track(MessageQueue.create(IPC_PRIVATE));
    const later = queue.receiveAsync({ type: 2 });
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await queue.sendAsync('second', { type: 2 });
    clearInterval(ticker);
    assert.ok(ticks > 0);
    assert.equal((await later).text(), 'second');
    await assert.rejects(queue.receiveAsync({ timeout: 5 }), { name: 'TimeoutError' });
    await assert.rejects(queue.receiveAsync({ type: 'x' as unknown as number }), { name: 'TypeError', message: /"options.type"/ });
  });

  it('iterates messages with for await until the queue is removed', async () => {
    const key = randomKey();
    const queue = track(MessageQueue.create(key));
    const other = peer();
    const otherId = await other.request<number>('msgget', key, 0);
    for (const text of ['a', 'b', 'c']) await other.request('msgsnd', otherId, 1, text);
    const texts: string[] = [];
    let removing: Promise<unknown> | undefined;
    for await (const message of queue) {
      texts.push(message.text());
      // Removed while the next receive waits: the iteration ends (removing sooner would
      // take queued messages with it).
      if (texts.length === 3) removing = sleep(20).then(() => other.request('msgctl', otherId, IPC_RMID));
    }
    await removing;
    assert.deepEqual(texts, ['a', 'b', 'c']);
    const controller = new AbortController();
    const fresh = track(MessageQueue.create(IPC_PRIVATE));
    setTimeout(() => controller.abort(), 10);
    await assert.rejects(async () => {
      for await (const message of fresh.messages({ signal: controller.signal })) assert.fail(`got ${message.text()}`);
    }, { name: 'AbortError' });
  });

  it('reads its attributes from IPC_STAT and sets mode, owner and maxBytes', () => {
    const queue = track(MessageQueue.create(IPC_PRIVATE, { mode: 0o660 }));
    assert.equal(queue.lastSendTime, null);
    queue.send('abc');
    queue.send('de');
    assert.deepEqual([queue.currentMessages, queue.currentBytes, queue.lastSendPid, queue.lastReceivePid], [2, 5, process.pid, 0]);
    queue.receive();
    assert.equal(queue.lastReceivePid, process.pid);
    assertRecent(queue.lastSendTime);
    assertRecent(queue.lastReceiveTime);
    assertRecent(queue.changeTime);
    assert.deepEqual([queue.uid, queue.gid, queue.cuid, queue.cgid], [process.getuid!(), process.getgid!(), process.getuid!(), process.getgid!()]);
    queue.mode = 0o600;
    queue.maxBytes = 1234;
    queue.uid = 65534;
    queue.gid = 65534;
    assert.deepEqual([queue.mode, queue.maxBytes, queue.uid, queue.gid], [0o600, 1234, 65534, 65534]);
    assert.equal(queue.stat().qbytes, 1234);
    assert.throws(() => {
      queue.maxBytes = -1;
    }, { name: 'RangeError', message: /"maxBytes"/ });
  });

  it('remove() wakes waiting receivers with EIDRM and removes the queue', async () => {
    const id = msgget(randomKey(), IPC_CREAT | IPC_EXCL | 0o600);
    msg.track(id);
    msgsnd(id, 1, 'x');
    const queue = MessageQueue.create(msgctl(id, IPC_STAT).key, { exclusive: false });
    assert.equal(queue.id, id);
    const waiting = queue.receiveAsync({ type: 2 });
    await new Promise((resolve) => setTimeout(resolve, 10));
    queue.remove();
    assertIpcError(await waiting.catch((error) => error), 'EIDRM', 'msgrcv');
    assertErrno(() => queue.stat(), 'EINVAL', 'msgctl');
  });
});
