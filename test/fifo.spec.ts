import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { pbkdf2 } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { createFifoReader, mkfifo, openFifoWriter, PIPE_BUF } from '../lib';
import {
  assertAliveWhileWaiting, assertExitWhileWaiting, assertIpcError, briefly, fuzzCalls, fuzzer, type FuzzTarget, itAsRoot, parkThreadpool, usePeers,
} from './helpers';

const run = promisify(execFile);

/** A directory for the test's FIFOs, removed after it. */
function useTempDir(): () => string {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kernel-ipc-fifo-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}

/** Streams a test opened are destroyed after it, passed or failed. */
function useStreams(): <S extends Socket>(stream: S) => S {
  const streams: Socket[] = [];
  afterEach(() => {
    for (const stream of streams) stream.destroy();
    streams.length = 0;
  });
  return (stream) => {
    streams.push(stream);
    return stream;
  };
}

function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Everything a reader receives until it ends; resolves once it has closed. */
async function readAll(reader: Socket): Promise<string> {
  let text = '';
  reader.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  await once(reader, 'close');
  return text;
}

/** A shell writing `text` into the FIFO with printf, as its own process. */
function shellWrite(path: string, text: string) {
  return run('sh', ['-c', 'printf "$1" > "$0"', path, text]);
}

/** Tracks whether a promise has settled. */
function settledFlag(promise: Promise<unknown>): () => boolean {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  return () => settled;
}

describe('mkfifo', () => {
  const dir = useTempDir();
  const newPeer = usePeers();

  it('creates a FIFO, mode 0600 unless given (less the umask)', () => {
    mkfifo(join(dir(), 'a'));
    const a = statSync(join(dir(), 'a'));
    assert.ok(a.isFIFO());
    assert.equal(a.mode & 0o777, 0o600);
    mkfifo(join(dir(), 'b'), 0o640);
    assert.equal(statSync(join(dir(), 'b')).mode & 0o777, 0o640 & ~process.umask());
  });

  it('fails like fs does, with the path: EEXIST, ENOENT', () => {
    const path = join(dir(), 'a');
    mkfifo(path);
    assert.throws(() => mkfifo(path), (error: Error & { path?: string }) => {
      assertIpcError(error, 'EEXIST', 'mkfifo');
      assert.equal(error.path, path);
      assert.equal(error.message, `EEXIST: file exists, mkfifo '${path}'`);
      return true;
    });
    const missing = join(dir(), 'no', 'such');
    assert.throws(() => mkfifo(missing), (error: Error & { path?: string }) => {
      assertIpcError(error, 'ENOENT', 'mkfifo');
      return error.path === missing;
    });
  });

  itAsRoot('fails with EACCES for a process without permission on the directory', 'starting a process as another user', async () => {
    const locked = join(dir(), 'locked');
    mkdirSync(locked, { mode: 0o700 });
    const peer = newPeer();
    await peer.request('dropPrivileges', 65534, 65534);
    await assert.rejects(peer.request('mkfifo', join(locked, 'f')), { code: 'EACCES', syscall: 'mkfifo' });
  });

  it('checks its arguments before the syscall', () => {
    assert.throws(() => mkfifo(1 as unknown as string), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /"path"/ });
    assert.throws(() => mkfifo('/tmp/a\u0000b'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    for (const mode of [-1, 0o1000, 1.5, NaN]) {
      assert.throws(() => mkfifo(join(dir(), 'm'), mode), { name: 'RangeError', message: /"mode"/ });
    }
    assert.throws(() => statSync(join(dir(), 'm')), { code: 'ENOENT' });
  });
});

describe('FIFO streams', function () {
  this.timeout(20000);
  const dir = useTempDir();
  const track = useStreams();
  const newPeer = usePeers();
  const fifo = (name = 'f') => {
    const path = join(dir(), name);
    mkfifo(path);
    return path;
  };

  it('a reader gets what a shell writer prints, then ends at EOF and closes its descriptor', async () => {
    const path = fifo();
    const before = openDescriptors();
    const reader = track(createFifoReader(path));
    const ended = once(reader, 'end');
    const [text] = await Promise.all([readAll(reader), shellWrite(path, 'hello\\nfrom sh\\n')]);
    await ended;
    assert.equal(text, 'hello\nfrom sh\n');
    assert.equal(openDescriptors(), before);
  });

  it('a shell writer waiting in open() is let through by the reader', async () => {
    const path = fifo();
    const writer = shellWrite(path, 'early');
    await sleep(50);
    const [text] = await Promise.all([readAll(track(createFifoReader(path))), writer]);
    assert.equal(text, 'early');
  });

  it('a writer feeds a shell reader (cat) and closes it with end()', async () => {
    const path = fifo();
    const cat = run('cat', [path], { encoding: 'utf8' });
    const writer = track(await openFifoWriter(path, { timeout: 10000 }));
    writer.write('one\n');
    writer.end('two\n');
    const { stdout } = await cat;
    assert.equal(stdout, 'one\ntwo\n');
  });

  it('a writer waits for a reader without the event loop or the threadpool, which fs.open on FIFOs blocks', async () => {
    const pool = parkThreadpool(dir());
    try {
      const path = fifo();
      const writing = openFifoWriter(path);
      const done = settledFlag(writing);
      await sleep(100);
      assert.equal(done(), false, 'no reader yet');
      const cat = run('cat', [path], { encoding: 'utf8' });
      const writer = track(await writing);
      writer.end('while the pool was stuck');
      assert.equal((await cat).stdout, 'while the pool was stuck');
    } finally {
      await pool.release();
    }
  });

  it('eight writers wait at once while fs.readFile and crypto.pbkdf2 complete, then all deliver', async () => {
    const paths = Array.from({ length: 8 }, (_, i) => fifo(`f${i}`));
    const writers = paths.map((path) => openFifoWriter(path));
    const flags = writers.map(settledFlag);
    const [file] = await Promise.all([
      readFile(__filename, 'utf8'),
      promisify(pbkdf2)('secret', 'salt', 1000, 32, 'sha256'),
    ]);
    assert.ok(file.includes('eight writers'));
    assert.deepEqual(flags.map((flag) => flag()), Array(8).fill(false), 'the writers still wait for readers');
    const readers = paths.map((path) => readAll(track(createFifoReader(path))));
    const streams = await Promise.all(writers);
    streams.forEach((stream, i) => track(stream).end(`fifo ${i}`));
    assert.deepEqual(await Promise.all(readers), paths.map((_, i) => `fifo ${i}`));
  });

  it('a keepOpen reader stays open across writers coming and going', async () => {
    const path = fifo();
    const before = openDescriptors();
    const reader = track(createFifoReader(path, { keepOpen: true }));
    let text = '';
    let ended = false;
    reader.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => (ended = true));
    for (const part of ['a', 'b', 'c']) await shellWrite(path, part);
    const writer = await openFifoWriter(path);
    writer.end('d');
    await once(writer, 'close');
    const deadline = Date.now() + 5000;
    while (text.length < 4 && Date.now() < deadline) await sleep(5);
    await sleep(50);
    assert.equal(text, 'abcd');
    assert.equal(ended, false);
    reader.destroy();
    await once(reader, 'close');
    assert.equal(openDescriptors(), before, 'the reader and its own writer are closed');
  });

  it(`keeps each write of up to PIPE_BUF (${PIPE_BUF}) bytes whole with several writer processes`, async () => {
    const path = fifo();
    // Records that do not fill pages: the pipe splits a longer write where its buffer fills up,
    // which would land inside a record, so each record must go in a write of its own.
    const size = 1000;
    const records = 1024;
    const total = 2 * records * size;
    const reader = track(createFifoReader(path, { keepOpen: true }));
    const chunks: Buffer[] = [];
    let bytes = 0;
    const all = new Promise<void>((resolve) => {
      reader.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        bytes += chunk.length;
        if (bytes >= total) resolve();
      });
    });
    // Paused until both writers have more queued than the pipe takes: they then write in
    // turns as the reader drains it, each with records waiting in its stream.
    reader.pause();
    const writers = [newPeer(), newPeer()];
    await Promise.all([
      writers[0].request('startRecords', path, 'a', records, size),
      writers[1].request('startRecords', path, 'b', records, size),
    ]);
    reader.resume();
    await Promise.all([writers[0].request('recordsWritten'), writers[1].request('recordsWritten'), all]);
    const data = Buffer.concat(chunks);
    assert.equal(data.length, total);
    const counts = { a: 0, b: 0 };
    for (let offset = 0; offset < data.length; offset += size) {
      const record = data.subarray(offset, offset + size);
      assert.ok(record.every((byte) => byte === record[0]), `record at ${offset} is mixed`);
      counts[String.fromCharCode(record[0]) as 'a' | 'b']++;
    }
    assert.deepEqual(counts, { a: records, b: records });
  });

  it('timeout and abort end a wait for a reader and leave no descriptor behind', async () => {
    const path = fifo();
    const before = openDescriptors();
    await assert.rejects(openFifoWriter(path, { timeout: 30 }), { name: 'TimeoutError', code: 'ETIMEDOUT', syscall: 'open' });
    const controller = new AbortController();
    const aborted = openFifoWriter(path, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(aborted, { name: 'AbortError' });
    await assert.rejects(openFifoWriter(path, { signal: AbortSignal.abort() }), { name: 'AbortError' });
    assert.equal(openDescriptors(), before);
  });

  it('a writer whose reader has gone fails with EPIPE', async () => {
    const path = fifo();
    const reader = createFifoReader(path);
    const writer = track(await openFifoWriter(path));
    reader.destroy();
    await once(reader, 'close');
    writer.write('nobody reads this');
    const [error] = await once(writer, 'error');
    assert.equal(error.code, 'EPIPE');
  });

  it('refuses what is not a FIFO, and missing paths, closing what it opened', async () => {
    const file = join(dir(), 'file');
    writeFileSync(file, 'plain');
    const before = openDescriptors();
    assert.throws(() => createFifoReader(file), { name: 'TypeError', code: 'ERR_INVALID_FD_TYPE', path: file });
    assert.throws(() => createFifoReader(dir()), { code: 'ERR_INVALID_FD_TYPE' });
    await assert.rejects(openFifoWriter(file), { name: 'TypeError', code: 'ERR_INVALID_FD_TYPE' });
    const missing = join(dir(), 'missing');
    assert.throws(() => createFifoReader(missing), (error: Error & { path?: string }) => {
      assertIpcError(error, 'ENOENT', 'open');
      return error.path === missing;
    });
    await assert.rejects(openFifoWriter(missing), { code: 'ENOENT', syscall: 'open', path: missing });
    assert.equal(openDescriptors(), before);
  });

  it('checks its arguments before any syscall', async () => {
    const path = fifo();
    assert.throws(() => createFifoReader(undefined as unknown as string), { code: 'ERR_INVALID_ARG_TYPE', message: /"path"/ });
    assert.throws(() => createFifoReader(path, { keepOpen: 1 as unknown as boolean }), { message: /"options.keepOpen"/ });
    assert.throws(() => createFifoReader(path, 'r' as unknown as object), { message: /"options"/ });
    await assert.rejects(openFifoWriter(path, { timeout: -1 }), { name: 'RangeError', message: /"options.timeout"/ });
    await assert.rejects(openFifoWriter(path, { signal: {} as AbortSignal }), { message: /"options.signal"/ });
    await assert.rejects(openFifoWriter(1 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('a waiting writer keeps its process alive unless ref is false; process.exit() ends it', async () => {
    const path = fifo();
    await assertAliveWhileWaiting('fifo', path, () => track(createFifoReader(path)));
    await assertExitWhileWaiting('fifo', path);
  });

  it('fuzz: garbage only ever throws or rejects with Errors', async () => {
    const path = fifo();
    const file = join(dir(), 'file');
    writeFileSync(file, '');
    const values: unknown[] = [
      undefined, null, true, NaN, -1, 0, 0o600, 0o1000, 2 ** 53, '', '\u0000', path, file, dir(), '/nonexistent/x', {},
      { keepOpen: true }, { keepOpen: 'yes' }, { timeout: 1 }, { timeout: -5 }, { signal: null }, { ref: 0 }, [], Symbol('s'),
    ];
    const opened: Socket[] = [];
    const keep = (stream: Socket) => (opened.push(stream), stream);
    const targets: FuzzTarget[] = [
      ['mkfifo', (a, b) => mkfifo(typeof a === 'string' && !a.startsWith('/') ? join(dir(), `m${a}`) : a, b)],
      ['createFifoReader', (a, b) => keep(createFifoReader(a, b))],
      ['openFifoWriter', (a, b) => openFifoWriter(a, briefly(b)).then(keep)],
    ];
    await fuzzCalls(fuzzer(), targets, values, { calls: 2000, maxArgs: 3 });
    for (const stream of opened) stream.destroy();
  });
});
