// The MessageQueue class: create and open, send and receive (promises, Sync forms, iteration),
// limits and attributes.
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

  it('sends strings, Buffers and typed arrays, and receives Buffers with text()', async () => {
    const queue = track(MessageQueue.create(IPC_PRIVATE));
    const sent = queue.send('héllo');
    assert.ok(sent instanceof Promise);
    assert.equal(await sent, undefined);
    await queue.send(Buffer.from([1, 2]), { type: 5 });
    await queue.send(new Float64Array([1.5]), { type: 3 });
    const first = await queue.receive();
    assert.ok(first instanceof Message);
    assert.deepEqual([first.type, first.text(), first.data.length], [1, 'héllo', 6]);
    assert.equal((await queue.receive({ type: -4 })).data.readDoubleLE(0), 1.5);
    assert.deepEqual((await queue.receive({ type: 5 })).data, Buffer.from([1, 2]));
    assertIpcError(await queue.receive({ block: false }).catch((error) => error), 'ENOMSG', 'msgrcv');
    queue.maxBytes = 2;
    await queue.send('ab', { block: false });
    assertIpcError(await queue.send('c', { block: false }).catch((error) => error), 'EAGAIN', 'msgsnd');
    // Argument mistakes reject; they never throw.
    const wrong = queue.send('x', { type: 0 });
    await assert.rejects(wrong, { name: 'RangeError', message: /"options.type"/ });
    await assert.rejects(queue.receive({ block: 'no' as unknown as boolean }), { name: 'TypeError', message: /"options.block"/ });
  });

  it('sendSync and receiveSync do the same on the calling thread', () => {
    const queue = track(MessageQueue.create(IPC_PRIVATE));
    assert.equal(queue.sendSync('héllo'), undefined);
    queue.sendSync(Buffer.from([1, 2]), { type: 5 });
    const first = queue.receiveSync();
    assert.deepEqual([first.type, first.text()], [1, 'héllo']);
    assert.deepEqual(queue.receiveSync({ type: 5 }).data, Buffer.from([1, 2]));
    assertErrno(() => queue.receiveSync({ block: false }), 'ENOMSG', 'msgrcv');
    queue.maxBytes = 2;
    queue.sendSync('ab', { block: false });
    assertErrno(() => queue.sendSync('c', { block: false }), 'EAGAIN', 'msgsnd');
    assert.throws(() => queue.sendSync('x', { type: 0 }), { name: 'RangeError', message: /"options.type"/ });
  });

  it('receives messages of any size up to the system maximum without truncating', async () => {
    const queue = track(MessageQueue.create(IPC_PRIVATE));
    const max = MessageQueue.maxMessageSize;
    assert.equal(max, msgctl(0, IPC_INFO).msgmax);
    const big = Buffer.alloc(max, 7);
    await queue.send(big);
    assert.deepEqual((await queue.receive()).data, big);
    queue.sendSync(big);
    assert.deepEqual(queue.receiveSync().data, big);
  });

  it('refuses messages over the system maximum or the queue size, naming the limit', async () => {
    const queue = track(MessageQueue.create(IPC_PRIVATE));
    const max = MessageQueue.maxMessageSize;
    queue.maxBytes = max * 2;
    assert.throws(() => queue.sendSync(Buffer.alloc(max + 1)), { name: 'RangeError', message: /maximum message size, kernel.msgmax/ });
    await assert.rejects(queue.send(Buffer.alloc(max + 1)), { name: 'RangeError', message: /kernel.msgmax/ });
    // Over both limits: msgmax is the one that holds, whatever the queue's size.
    const overBoth = { name: 'RangeError', message: new RegExp(`at most ${max} bytes .*kernel.msgmax`) };
    assert.throws(() => queue.sendSync(Buffer.alloc(max * 2 + 1)), overBoth);
    await assert.rejects(queue.send(Buffer.alloc(max * 2 + 1)), overBoth);
    queue.maxBytes = 10;
    const overQueue = { name: 'RangeError', message: /at most 10 bytes \(the queue's maxBytes\)/ };
    assert.throws(() => queue.sendSync(Buffer.alloc(11)), overQueue);
    await assert.rejects(queue.send(Buffer.alloc(11)), overQueue);
    // Not waiting, the same: EAGAIN would say "try again", and that never helps.
    assert.throws(() => queue.sendSync(Buffer.alloc(11), { block: false }), overQueue);
    await assert.rejects(queue.send(Buffer.alloc(11), { block: false }), overQueue);
    await queue.send(Buffer.alloc(10));
    assertErrno(() => queue.sendSync(Buffer.alloc(1), { block: false }), 'EAGAIN', 'msgsnd');
    assert.equal(queue.receiveSync().data.length, 10);
    assert.equal(queue.currentMessages, 0);
  });

  it('sends and receives without blocking the event loop', async () => {
    const queue = track(MessageQueue.create(IPC_PRIVATE));
    const later = queue.receive({ type: 2 });
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await queue.send('second', { type: 2 });
    clearInterval(ticker);
    assert.ok(ticks > 0);
    assert.equal((await later).text(), 'second');
    await assert.rejects(queue.receive({ timeout: 5 }), { name: 'TimeoutError' });
    const controller = new AbortController();
    const aborted = queue.receive({ signal: controller.signal });
    controller.abort();
    await assert.rejects(aborted, { name: 'AbortError' });
    // A full queue: the send waits for room, off the event loop.
    queue.maxBytes = 4;
    await queue.send('full');
    const waiting = queue.send('more', { type: 3 });
    await sleep(20);
    assert.equal(queue.currentMessages, 1);
    assert.equal((await queue.receive()).text(), 'full');
    await waiting;
    assert.equal(queue.receiveSync().text(), 'more');
    await assert.rejects(queue.receive({ type: 'x' as unknown as number }), { name: 'TypeError', message: /"options.type"/ });
  });

  it('settles a failed receive even when reading an error\'s stack throws', async () => {
    const queue = track(MessageQueue.create(IPC_PRIVATE));
    const waiting = queue.receive();
    await sleep(20);
    const { prepareStackTrace } = Error;
    // A broken stack hook (a source-map tool, say) must not leave the promise unsettled.
    Error.prepareStackTrace = () => {
      throw new Error('broken hook');
    };
    try {
      queue.remove();
      const error = await waiting.catch((failure) => failure);
      assert.equal(error.code, 'EIDRM');
      assert.equal(error.id, queue.id);
    } finally {
      Error.prepareStackTrace = prepareStackTrace;
    }
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

  it('reads its attributes from IPC_STAT and sets mode, owner and maxBytes', async () => {
    const queue = track(MessageQueue.create(IPC_PRIVATE, { mode: 0o660 }));
    assert.equal(queue.lastSendTime, null);
    await queue.send('abc');
    queue.sendSync('de');
    assert.deepEqual([queue.currentMessages, queue.currentBytes, queue.lastSendPid, queue.lastReceivePid], [2, 5, process.pid, 0]);
    await queue.receive();
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
    const waiting = queue.receive({ type: 2 });
    await new Promise((resolve) => setTimeout(resolve, 10));
    queue.remove();
    const error = await waiting.catch((failure) => failure);
    assertIpcError(error, 'EIDRM', 'msgrcv');
    // It names the queue, as fs errors name the path.
    assert.equal(error.message, `EIDRM: identifier removed, msgrcv id ${id}`);
    assert.equal(error.id, id);
    assertErrno(() => queue.stat(), 'EINVAL', 'msgctl');
  });
});
