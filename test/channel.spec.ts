// The channel: one writer and one reader over a ring in one segment, across real processes;
// every record delivered once and intact, wrap-around, back-pressure, a peer killed, and a
// hostile other end.
import assert from 'node:assert/strict';
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { ChannelReader, ChannelWriter, IPC_STAT, shmat, shmctl, shmdt } from '../lib';
import { packageRoot } from '../lib/native';
import { recordOf } from './fixtures/channel-end';
import { useShmCleanup } from './helpers';

describe('channel', function () {
  this.timeout(60000);
  const shm = useShmCleanup();
  const children: ChildProcess[] = [];
  const ends: Array<ChannelReader | ChannelWriter> = [];
  afterEach(async () => {
    for (const end of ends.splice(0)) end.close();
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
  });

  function child(...args: string[]): ChildProcess {
    const started = fork(join(__dirname, 'fixtures', 'channel-end.js'), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(started);
    return started;
  }

  function reader(capacity: number): ChannelReader {
    const made = ChannelReader.create(null, { capacity });
    ends.push(made);
    return made;
  }

  it('delivers a million records of random sizes from another process, each once and intact', async () => {
    const count = 1_000_000;
    const channel = reader(64 * 1024);
    const writer = child('writer', String(channel.id), String(count), '200');
    let next = 0;
    for await (const record of channel) {
      const index = record.readUInt32LE(0);
      assert.equal(index, next, 'in order, none lost, none twice');
      assert.ok(record.equals(recordOf(index, 200)), `record ${index} is intact`);
      next++;
    }
    assert.equal(next, count);
    const [code] = await once(writer, 'exit');
    assert.equal(code, 0);
  });

  it('wraps around at every position of the ring', async () => {
    const capacity = 4096;
    const channel = reader(capacity);
    const writer = await ChannelWriter.open({ id: channel.id });
    ends.push(writer);
    // Where the next record goes, as the layout says: a record that does not fit before the end
    // of the ring starts over at 0 (after a padding record).
    let offset = 0;
    const put = (length: number, index: number) => {
      const record = recordOf(index, length + 4).subarray(0, length);
      writer.sendSync(record);
      assert.ok(channel.receiveSync()!.equals(record), `a record of ${length} bytes at ${offset}`);
      // Its room back at once: the writer, on this same thread, must never wait for it.
      channel.release();
      const bytes = 8 + ((length + 7) & ~7);
      offset = capacity - offset < bytes ? bytes : (offset + bytes) % capacity;
    };
    // Records that fill the ring up to `target`, none of them wrapping.
    const moveTo = (target: number) => {
      if (target < offset) moveTo(capacity);
      for (let left = (target - offset) % capacity; left > 0; left = (target - offset + capacity) % capacity) {
        put(Math.min(left, 2048) - 8, left);
      }
    };
    let wrapped = 0;
    for (let position = 0; position < capacity; position += 8) {
      moveTo(position);
      // Just too long for the room before the end, where a record can be: it wraps.
      const length = Math.min(capacity - position - 7, 2040);
      if (capacity - position - 7 <= 2040) wrapped++;
      put(length, position);
    }
    assert.equal(wrapped, 2048 / 8 - 1);
  });

  it('holds the writer back while the ring is full, and says so when asked not to wait', async () => {
    const channel = reader(4096);
    const writer = await ChannelWriter.open({ id: channel.id });
    ends.push(writer);
    const record = Buffer.alloc(1000, 7);
    let sent = 0;
    for (;;) {
      try {
        writer.sendSync(record, { block: false });
        sent++;
      } catch (error) {
        assert.equal((error as { code?: string }).code, 'EAGAIN');
        break;
      }
    }
    assert.equal(sent, 4);
    assert.throws(() => writer.sendSync(record, { timeout: 20 }), { name: 'TimeoutError' });
    await assert.rejects(writer.send(record, { timeout: 20 }), { name: 'TimeoutError' });
    const waiting = writer.send(Buffer.from('after the room'));
    assert.equal((await channel.receive())!.length, 1000);
    // Released with the next receive: then the waiting send finds room.
    for (let i = 0; i < 3; i++) await channel.receive();
    await waiting;
    assert.equal((await channel.receive())!.toString(), 'after the room');
  });

  it('keeps a sleep marked whatever a late wake does: one meant for an earlier sleep cannot take a later one', async () => {
    const writer = ChannelWriter.create(null, { capacity: 4096 });
    ends.push(writer);
    // The reader sleeps on a thread of its own (a Sync call), and counts what it received.
    const received = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(`
      const { workerData: { id, received } } = require('node:worker_threads');
      const { ChannelReader } = require(${JSON.stringify(join(__dirname, '..', 'lib'))});
      ChannelReader.open({ id }).then((reader) => {
        while (reader.receiveSync({ timeout: 20000 }) !== null) Atomics.add(received, 0, 1);
        reader.close();
      });
    `, { eval: true, workerData: { id: writer.id, received } });
    await writer.connected;
    const words = new Int32Array(shm.keep(shmat(writer.id)).buffer, 0, 64);
    const READER_SLEEPS = 49;
    const asleep = async () => {
      while (Atomics.load(words, READER_SLEEPS) === 0) await delay(1);
      return Atomics.load(words, READER_SLEEPS);
    };
    const gotten = async (count: number) => {
      while (Atomics.load(received, 0) < count) await delay(1);
    };
    const first = await asleep();
    writer.sendSync('one');
    await gotten(1);
    const second = await asleep();
    // A writer that saw the first sleep, and clears its mark only now, as a wake would.
    Atomics.compareExchange(words, READER_SLEEPS, first, 0);
    assert.notEqual(Atomics.load(words, READER_SLEEPS), 0, `the second sleep (${second}) is still marked, whatever a wake for the first (${first}) does`);
    writer.sendSync('two');
    await gotten(2);
    writer.close();
    await once(worker, 'exit');
  });

  it('fails within 100 ms when the other end is killed, and the kernel frees the segment', async () => {
    const channel = reader(4096);
    const writer = child('hold', String(channel.id));
    await once(writer, 'message');
    assert.equal((await channel.receive())!.toString(), 'first');
    const waiting = channel.receive();
    const killed = performance.now();
    writer.kill('SIGKILL');
    await assert.rejects(waiting, { code: 'ERR_CHANNEL_PEER_GONE' });
    const noticed = performance.now() - killed;
    assert.ok(noticed < 100, `noticed after ${noticed.toFixed(1)} ms`);
    const id = channel.id;
    channel.close();
    assert.throws(() => shmctl(id, IPC_STAT), { code: 'EINVAL' });
    assert.deepEqual(readdirSync(tmpdir()).filter((name) => name.startsWith(`kernel-ipc-channel-${id}-`)), []);
  });

  it('refuses to open a channel whose creator died before anyone opened it, and removes what it left', async () => {
    const creator = spawn(process.execPath, ['-e', `
      const { ChannelReader } = require(${JSON.stringify(packageRoot)});
      const reader = ChannelReader.create(null, { capacity: 4096 });
      process.send(reader.id);
      setInterval(() => {}, 1000);`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(creator);
    const [id] = await once(creator, 'message') as [number];
    creator.kill('SIGKILL');
    await once(creator, 'exit');
    await assert.rejects(ChannelWriter.open({ id }), { code: 'ERR_CHANNEL_PEER_GONE' });
    assert.throws(() => shmctl(id, IPC_STAT), { code: 'EINVAL' });
    assert.deepEqual(readdirSync(tmpdir()).filter((name) => name.startsWith(`kernel-ipc-channel-${id}-`)), []);
  });

  it('gives each of several receiveCopy() and receive() calls made at once its own record, intact', async () => {
    const count = 20_000;
    const channel = reader(4096);
    child('writer', String(channel.id), String(count), '1000');
    let next = 0;
    while (next < count) {
      // Two copies at once, then a copy and a view: no call may give back a record another one
      // still holds.
      const [a, b] = await Promise.all([channel.receiveCopy(), channel.receiveCopy()]);
      for (const copy of [a, b]) assert.ok(copy!.equals(recordOf(next, 1000)), `copy ${next++} is intact`);
      const copied = channel.receiveCopy();
      const view = await channel.receive();
      assert.ok((await copied)!.equals(recordOf(next++, 1000)), 'the copy is intact');
      assert.ok(view!.equals(recordOf(next++, 1000)), 'the view is intact until the next receive');
    }
    assert.equal(await channel.receive(), null);
  });

  it('wakes the other end from Sync calls made before this end learnt that it connected', async () => {
    const count = 20_000;
    const writer = ChannelWriter.create(null, { capacity: 4096 });
    ends.push(writer);
    const drain = child('drain', String(writer.id), '500');
    // No await before these: the event loop has not run since the reader opened the channel.
    // A failure to wake it is a TimeoutError here, not a hang.
    for (let i = 0; i < count; i++) writer.sendSync(recordOf(i, 500), { timeout: 10_000 });
    writer.close();
    const [received] = await once(drain, 'message');
    assert.equal(received, count);
  });

  it('counts a queued call\'s timeout from the call, and ends it at once if its signal is aborted', async () => {
    const channel = reader(4096);
    const writer = await ChannelWriter.open({ id: channel.id });
    ends.push(writer);
    let firstSettled = false;
    const first = channel.receive().finally(() => (firstSettled = true));
    await assert.rejects(channel.receive({ timeout: 50 }), { name: 'TimeoutError' });
    await assert.rejects(channel.receive({ signal: AbortSignal.abort() }), { name: 'AbortError' });
    assert.equal(firstSettled, false, 'the call ahead of them still waits');
    writer.sendSync('one');
    assert.equal((await first)!.toString(), 'one');
    // Nothing was taken by the calls that ended.
    writer.sendSync('two');
    assert.equal((await channel.receive())!.toString(), 'two');
    // Waiting (asleep) and queued calls hear an abort that an earlier listener kept from the others.
    const controller = new AbortController();
    controller.signal.addEventListener('abort', (event) => event.stopImmediatePropagation());
    const asleep = channel.receive({ signal: controller.signal });
    const queued = channel.receive({ signal: controller.signal, timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    await assert.rejects(asleep, { name: 'AbortError' });
    await assert.rejects(queued, { name: 'AbortError' });
  });

  it('resolves connected, then gives every record, when the writer sends and closes before this end looks', async () => {
    for (let cycle = 0; cycle < 30; cycle++) {
      const channel = reader(4096);
      const writer = child('writer', String(channel.id), '3', '100');
      const exited = once(writer, 'exit');
      await channel.connected;
      let next = 0;
      for await (const record of channel) assert.ok(record.equals(recordOf(next++, 100)), `cycle ${cycle}: record ${next - 1} is intact`);
      assert.equal(next, 3, `cycle ${cycle}: every record, then the end`);
      await exited;
      channel.close();
    }
  });

  it('rejects connected when the end closes before anyone opened the channel', async () => {
    const channel = reader(4096);
    const connected = channel.connected;
    channel.close();
    await assert.rejects(connected, { code: 'ERR_CHANNEL_CLOSED' });
  });

  it('ends the reader once the writer closes and every record is read', async () => {
    const channel = reader(4096);
    const writer = await ChannelWriter.open({ id: channel.id });
    await writer.send('one');
    writer.sendSync('two');
    writer.close();
    const texts: string[] = [];
    for await (const record of channel) texts.push(record.toString());
    assert.deepEqual(texts, ['one', 'two']);
    assert.equal(channel.receiveSync(), null);
    await assert.rejects(writer.send('late'), { code: 'ERR_CHANNEL_CLOSED' });
  });

  it('refuses records over half the ring, a second end of a side, and use after close', async () => {
    const channel = reader(4096);
    const writer = await ChannelWriter.open({ id: channel.id });
    ends.push(writer);
    assert.equal(writer.maxMessageSize, 2040);
    assert.throws(() => writer.sendSync(Buffer.alloc(2041)), { name: 'RangeError', message: /half the channel's capacity/ });
    await assert.rejects(writer.send(Buffer.alloc(2041)), { name: 'RangeError' });
    await assert.rejects(ChannelWriter.open({ id: channel.id }), { code: 'ERR_CHANNEL_TAKEN' });
    assert.throws(() => ChannelReader.create(null, { capacity: 5000 }), { message: /power of two/ });
    // A Sync call behind a pending promise call of the same end would take its place.
    const pending = channel.receive();
    assert.throws(() => channel.receiveSync(), { code: 'ERR_INVALID_STATE' });
    writer.sendSync('first');
    assert.equal((await pending)!.toString(), 'first');
    writer.sendSync('view');
    const view = channel.receiveSync()!;
    assert.equal(view.toString(), 'view');
    channel.close();
    // The ring is unmapped: its views are empty, never a way into unmapped memory.
    assert.equal(view.length, 0);
    assert.throws(() => channel.receiveSync(), { code: 'ERR_CHANNEL_CLOSED' });
    // Closed under a waiting call: it ends, saying so.
    const other = reader(4096);
    const otherWriter = await ChannelWriter.open({ id: other.id });
    ends.push(otherWriter);
    const waiting = other.receive();
    await new Promise((resolve) => setTimeout(resolve, 20));
    other.close();
    await assert.rejects(waiting, { code: 'ERR_CHANNEL_CLOSED' });
    // Closed a microtask after a queued call had its room, before it filled it: it says so.
    for (const call of [(writer: ChannelWriter) => writer.send(Buffer.alloc(100, 1), {}), (writer: ChannelWriter) => writer.reserve(100)]) {
      const racing = await ChannelWriter.open({ id: reader(4096).id });
      ends.push(racing);
      const made = call(racing);
      void Promise.resolve().then(() => racing.close());
      await assert.rejects(made, { code: 'ERR_CHANNEL_CLOSED' });
    }
  });

  it('never takes payload of an earlier lap, or a stamp 2^32 bytes old, for the next record', async () => {
    // Payload that happens to hold, where a later record's stamp goes, that record's stamp.
    const channel = reader(4096);
    const writer = await ChannelWriter.open({ id: channel.id });
    ends.push(writer);
    const first = Buffer.alloc(2040);
    first.writeUInt32LE(4, 8);
    first.writeUInt32LE(4112 | 1, 12);
    for (const record of [first, Buffer.alloc(2040), Buffer.alloc(8)]) {
      writer.sendSync(record);
      assert.equal(channel.receiveSync()!.length, record.length);
    }
    assert.throws(() => channel.receiveSync({ block: false }), { code: 'EAGAIN' }, 'nothing was sent');
    writer.sendSync('real');
    assert.equal(channel.receiveSync({ timeout: 1000 })!.toString(), 'real');
    // A ring of 2^30: four laps later, position 8 is position 8 again.
    const big = reader(2 ** 30);
    const bigWriter = await ChannelWriter.open({ id: big.id });
    ends.push(bigWriter);
    const put = (length: number, text?: string) => {
      const view = bigWriter.reserveSync(length);
      if (text !== undefined) view.write(text);
      bigWriter.commit();
      big.receiveSync();
      big.release();
    };
    put(0);
    put(5, 'hello');
    put(2 ** 29 - 8);
    put(2 ** 29 - 32);
    for (let lap = 1; lap < 4; lap++) {
      put(2 ** 29 - 8);
      put(2 ** 29 - 8);
    }
    put(0);
    assert.throws(() => big.receiveSync({ block: false }), { code: 'EAGAIN' }, 'the record at 8 came 2^32 bytes ago');
  });

  it('reports garbage from the other end as corrupt, never reading outside the ring', async () => {
    const channel = reader(4096);
    const raw = shm.keep(shmat(channel.id));
    const writer = await ChannelWriter.open({ id: channel.id });
    ends.push(writer);
    const ring = new Int32Array(raw.buffer, raw.byteOffset + 512, 1024);
    writer.sendSync('abc');
    // The record's length, made larger than the ring could hold.
    ring[0] = 3000;
    await assert.rejects(channel.receive(), { code: 'ERR_CHANNEL_CORRUPT', message: /says it holds 3000 bytes/ });
    ring[0] = -1;
    assert.throws(() => channel.receiveSync(), { code: 'ERR_CHANNEL_CORRUPT', message: /says it holds 4294967295 bytes/ });
    ring[0] = 3;
    // The stamp of this position, with a kind no record has.
    ring[1] = 5;
    assert.throws(() => channel.receiveSync(), { code: 'ERR_CHANNEL_CORRUPT', message: /kind 5/ });
    // Padding that does not reach the end of the ring.
    ring[1] = 2;
    assert.throws(() => channel.receiveSync(), { code: 'ERR_CHANNEL_CORRUPT', message: /padding record at 0/ });
    // A stamp of another lap of the ring, or of no position at all: no record (yet).
    for (const stale of [4096 | 1, 0, 8 | 1]) {
      ring[1] = stale;
      assert.throws(() => channel.receiveSync({ block: false }), { code: 'EAGAIN' });
    }
    ring[1] = 1;
    assert.equal(channel.receiveSync()!.toString(), 'abc');
    // Positions are multiples of 8: one that is not, from before this end opened, is garbage.
    const twisted = ChannelWriter.create(null, { capacity: 4096 });
    ends.push(twisted);
    const twistedRaw = shmat(twisted.id);
    Atomics.store(new Int32Array(twistedRaw.buffer, twistedRaw.byteOffset, 128), 32, 5);
    shmdt(twistedRaw);
    await assert.rejects(ChannelReader.open({ id: twisted.id }), { code: 'ERR_CHANNEL_CORRUPT', message: /positions \(write 0, read 5\)/ });
    // A segment that holds no channel cannot be opened as one.
    const other = ChannelReader.create(null, { capacity: 4096 });
    ends.push(other);
    const otherRaw = shmat(other.id);
    otherRaw.writeUInt32LE(0, 0);
    shmdt(otherRaw);
    await assert.rejects(ChannelWriter.open({ id: other.id }), { code: 'ERR_CHANNEL_CORRUPT', message: /holds no channel/ });
  });
});
