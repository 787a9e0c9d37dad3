// What each benchmark row measures: a session set up once (peer processes started, objects
// made) whose runs interleave with the other rows' runs (see index.ts).
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import {
  ChannelReader, ChannelWriter, createFifoReader, futex, IPC_CREAT, IPC_PRIVATE, IPC_RMID, mkfifo, msgctl, msgget, msgrcv, msgsnd, openFifoWriter,
  semctl, semget, semop, shmat, shmctl, shmdt, shmget,
} from '../lib';
import * as promises from '../lib/promises';
import { Floor, type FloorMode } from './floors';
import { peerCpu } from './placement';

export const MiB = 1024 * 1024;
const payload = Buffer.alloc(64, 'x');

export interface Session {
  /** Nanoseconds per round trip, or per MiB moved, over `count` of them. */
  run(count: number): Promise<number>;
  close(): Promise<void>;
}

export interface Mechanism {
  name: string;
  metric: 'rtt_us' | 'gbps';
  /** The C program this row is compared with. */
  floor?: string;
  /** Undefined where it cannot run here (no C compiler). */
  start(): Promise<Session | undefined>;
}

function timed(count: number, body: () => void): number {
  const started = process.hrtime.bigint();
  body();
  return Number(process.hrtime.bigint() - started) / count;
}

async function timedAsync(count: number, body: () => Promise<void>): Promise<number> {
  const started = process.hrtime.bigint();
  await body();
  return Number(process.hrtime.bigint() - started) / count;
}

/**
 * Nanoseconds per round trip, each after a pause long enough for the other side to fall asleep:
 * fewer of them than `count` (each pause is a timer's millisecond), timed one by one.
 */
async function asleep(count: number, roundTrip: () => Promise<void>): Promise<number> {
  const rounds = Math.max(20, Math.ceil(count / 25));
  let total = 0n;
  for (let i = 0; i < rounds; i++) {
    await delay(1);
    const started = process.hrtime.bigint();
    await roundTrip();
    total += process.hrtime.bigint() - started;
  }
  return Number(total) / rounds;
}

export function echo(...args: string[]): ChildProcess {
  const stdio = ['ignore', 'inherit', 'inherit', 'ipc'] as const;
  const cpu = peerCpu();
  // Node's own execArgv only when not pinned: fork() drops a -e from it only then.
  return fork(join(__dirname, 'echo.js'), args, cpu === undefined
    ? { stdio: [...stdio] }
    : { stdio: [...stdio], execPath: 'taskset', execArgv: ['-c', String(cpu), process.execPath] });
}

export async function ended(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await once(child, 'exit');
}

function floor(mode: FloorMode): () => Promise<Session | undefined> {
  return async () => Floor.start(mode);
}

/** Reads exactly `bytes` from `socket` per call. */
function reader(socket: Socket | NodeJS.ReadableStream): (bytes: number) => Promise<void> {
  let missing = 0;
  let done: () => void = () => {};
  socket.on('data', (chunk: Buffer) => {
    missing -= chunk.length;
    if (missing <= 0) done();
  });
  return (bytes) => new Promise<void>((resolve) => {
    missing += bytes;
    done = resolve;
  });
}

const futexRoundTrip = (kind: 'sync' | 'async') => async (): Promise<Session> => {
  const id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600);
  const buffer = shmat(id);
  shmctl(id, IPC_RMID);
  const words = new Int32Array(buffer.buffer, buffer.byteOffset, 3);
  const child = echo('futex', String(id));
  let round = 0;
  return {
    run: (count) => (kind === 'sync'
      ? Promise.resolve(timed(count, () => {
        for (let i = 0; i < count; i++) {
          Atomics.store(words, 0, ++round);
          futex.notify(words, 0);
          for (let seen = Atomics.load(words, 1); seen < round; seen = Atomics.load(words, 1)) futex.wait(words, 1, seen);
        }
      }))
      : timedAsync(count, async () => {
        for (let i = 0; i < count; i++) {
          Atomics.store(words, 0, ++round);
          futex.notify(words, 0);
          for (let seen = Atomics.load(words, 1); seen < round; seen = Atomics.load(words, 1)) await futex.waitAsync(words, 1, seen);
        }
      })),
    async close() {
      Atomics.store(words, 2, 1);
      Atomics.add(words, 0, 1);
      futex.notify(words, 0);
      await ended(child);
      shmdt(buffer);
    },
  };
};

const messageQueue = (kind: 'sync' | 'promise') => async (): Promise<Session> => {
  const msqid = msgget(IPC_PRIVATE, 0o600);
  const child = echo(kind === 'sync' ? 'msg-sync' : 'msg-promise', String(msqid));
  return {
    run: (count) => (kind === 'sync'
      ? Promise.resolve(timed(count, () => {
        for (let i = 0; i < count; i++) {
          msgsnd(msqid, 1, payload);
          msgrcv(msqid, 64, 2);
        }
      }))
      : timedAsync(count, async () => {
        for (let i = 0; i < count; i++) {
          await promises.msgsnd(msqid, 1, payload);
          await promises.msgrcv(msqid, 64, 2);
        }
      })),
    async close() {
      msgctl(msqid, IPC_RMID);
      await ended(child);
    },
  };
};

async function semaphoresAndMemory(): Promise<Session> {
  const semid = semget(IPC_PRIVATE, 2, 0o600);
  const shmid = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600);
  const memory = shmat(shmid);
  shmctl(shmid, IPC_RMID);
  const child = echo('sem', String(semid), String(shmid));
  const give = [{ num: 0, op: 1 }];
  const take = [{ num: 1, op: -1 }];
  const answer = Buffer.alloc(64);
  return {
    run: async (count) => timed(count, () => {
      for (let i = 0; i < count; i++) {
        payload.copy(memory, 512);
        semop(semid, give);
        semop(semid, take);
        memory.copy(answer, 0, 1024, 1088);
      }
    }),
    async close() {
      semctl(semid, 0, IPC_RMID);
      await ended(child);
      shmdt(memory);
    },
  };
}

/** Over a stream to an echo process: `count` 64-byte round trips, or a request for `count` MiB. */
function exchange(out: NodeJS.WritableStream, read: (bytes: number) => Promise<void>, bulk: boolean, count: number): Promise<number> {
  return timedAsync(count, async () => {
    if (bulk) {
      const request = Buffer.alloc(4);
      request.writeUInt32LE(count);
      out.write(request);
      await read(count * MiB);
      return;
    }
    for (let i = 0; i < count; i++) {
      const answered = read(64);
      out.write(payload);
      await answered;
    }
  });
}

/** Two FIFOs to an echo process: 64-byte round trips, or requests for MiB. */
const fifo = (bulk: boolean) => async (): Promise<Session> => {
  const dir = mkdtempSync(join(tmpdir(), 'kernel-ipc-bench-'));
  const [requests, answers] = [join(dir, 'requests'), join(dir, 'answers')];
  mkfifo(requests);
  mkfifo(answers);
  const child = echo(bulk ? 'fifo-bulk' : 'fifo', requests, answers);
  const incoming = createFifoReader(answers);
  const outgoing = await openFifoWriter(requests);
  const read = reader(incoming);
  return {
    run: (count) => exchange(outgoing, read, bulk, count),
    async close() {
      outgoing.end();
      await ended(child);
      incoming.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

/** A Unix-domain socket (node:net) to an echo process; `pausing`: each round trip after a pause. */
const unixSocket = (bulk: boolean, pausing = false) => async (): Promise<Session> => {
  const dir = mkdtempSync(join(tmpdir(), 'kernel-ipc-bench-'));
  const path = join(dir, 'echo.sock');
  const child = echo(bulk ? 'socket-bulk' : 'socket', path);
  await once(child, 'message');
  const socket = connect(path);
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const read = reader(socket);
  return {
    run: (count) => (pausing ? asleep(count, () => exchange(socket, read, false, 1).then(() => undefined)) : exchange(socket, read, bulk, count)),
    async close() {
      socket.destroy();
      await ended(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

async function childProcessSend(): Promise<Session> {
  const child = echo('process');
  const text = payload.toString('latin1');
  let answered: () => void = () => {};
  child.on('message', () => answered());
  return {
    run: (count) => timedAsync(count, async () => {
      for (let i = 0; i < count; i++) {
        await new Promise<void>((resolve) => {
          answered = resolve;
          child.send(text);
        });
      }
    }),
    async close() {
      child.disconnect();
      await ended(child);
    },
  };
}

/** A worker thread: 64-byte round trips, or 1 MiB Buffers it posts (copied) on request. */
const workerPostMessage = (bulk: boolean) => async (): Promise<Session> => {
  const worker = new Worker(`
    const { parentPort } = require('node:worker_threads');
    const chunk = new Uint8Array(${MiB}).fill(121);
    parentPort.on('message', (message) => {
      if (typeof message !== 'number') return parentPort.postMessage(message);
      for (let i = 0; i < message; i++) parentPort.postMessage(chunk);
    });`, { eval: true });
  let expected = 0;
  let done: () => void = () => {};
  worker.on('message', () => {
    if (--expected === 0) done();
  });
  return {
    run: (count) => timedAsync(count, async () => {
      if (bulk) {
        await new Promise<void>((resolve) => {
          done = resolve;
          expected = count;
          worker.postMessage(count);
        });
        return;
      }
      for (let i = 0; i < count; i++) {
        await new Promise<void>((resolve) => {
          done = resolve;
          expected = 1;
          worker.postMessage(payload);
        });
      }
    }),
    async close() {
      await worker.terminate();
    },
  };
};

/**
 * Two channels to an echo process (requests out, answers back): 64-byte round trips blocking
 * (`sync`), with promises (`async`, and `asleep`: after a pause, with the echo asleep), or
 * written in place and read in place (`zero-copy`); or
 * 1 MiB records sent, then read in place or copied out into a Buffer of the reader's (as the C
 * ring does: receiveCopy's new Buffer per record would measure Node's allocator, not the channel).
 */
const channel = (kind: 'sync' | 'async' | 'asleep' | 'zero-copy' | 'bulk' | 'bulk-copy') => async (): Promise<Session> => {
  const bulk = kind === 'bulk' || kind === 'bulk-copy';
  const requests = ChannelWriter.create(null, { capacity: 64 * 1024 });
  const answers = ChannelReader.create(null, { capacity: bulk ? 4 * MiB : 64 * 1024 });
  const child = echo(kind === 'sync' || kind === 'zero-copy' ? 'channel' : bulk ? 'channel-bulk' : 'channel-async', String(requests.id), String(answers.id));
  await requests.connected;
  await answers.connected;
  let sink = 0;
  const own = Buffer.alloc(bulk ? MiB : 0);
  return {
    run: (count) => {
      if (kind === 'sync') {
        return Promise.resolve(timed(count, () => {
          for (let i = 0; i < count; i++) {
            requests.sendSync(payload);
            answers.receiveSync();
          }
        }));
      }
      if (kind === 'zero-copy') {
        return Promise.resolve(timed(count, () => {
          for (let i = 0; i < count; i++) {
            requests.reserveSync(64).fill(120);
            requests.commit();
            sink += answers.receiveSync()![0];
          }
        }));
      }
      if (kind === 'asleep') return asleep(count, async () => {
        await requests.send(payload);
        await answers.receive();
      });
      return timedAsync(count, async () => {
        if (!bulk) {
          for (let i = 0; i < count; i++) {
            await requests.send(payload);
            await answers.receive();
          }
          return;
        }
        const request = Buffer.alloc(4);
        request.writeUInt32LE(count);
        await requests.send(request);
        for (let i = 0; i < count; i++) {
          const record = (await answers.receive())!;
          sink += kind === 'bulk' ? record.length : record.copy(own);
        }
      });
    },
    async close() {
      requests.close();
      answers.release();
      await ended(child);
      answers.close();
      if (sink < 0) console.log(sink);
    },
  };
};

async function bufferCopy(): Promise<Session> {
  const from = Buffer.alloc(MiB, 'x');
  const to = Buffer.alloc(MiB);
  return {
    run: async (count) => timed(count, () => {
      for (let i = 0; i < count; i++) from.copy(to);
    }),
    async close() {},
  };
}

/** The 64-byte round trips, C floors first; the socket is what the others are compared with. */
export const roundTrips: Mechanism[] = [
  { name: 'C spin (shared memory, busy-waiting)', metric: 'rtt_us', start: floor('spin') },
  { name: 'C spin, then futex', metric: 'rtt_us', start: floor('spin-futex') },
  { name: 'C futex', metric: 'rtt_us', start: floor('futex') },
  { name: 'C msgsnd + msgrcv', metric: 'rtt_us', start: floor('msg') },
  { name: 'C semop + shared memory', metric: 'rtt_us', start: floor('sem') },
  { name: 'C pipe', metric: 'rtt_us', start: floor('pipe') },
  { name: 'C Unix socket', metric: 'rtt_us', start: floor('unix') },
  { name: 'channel, sync (sendSync, receiveSync)', metric: 'rtt_us', floor: 'C spin, then futex', start: channel('sync') },
  { name: 'channel, async (send, receive)', metric: 'rtt_us', floor: 'C spin, then futex', start: channel('async') },
  { name: 'channel, async, after 1 ms (echo asleep)', metric: 'rtt_us', floor: 'Unix socket, after 1 ms', start: channel('asleep') },
  { name: 'channel, zero-copy (reserveSync, receiveSync)', metric: 'rtt_us', floor: 'C spin, then futex', start: channel('zero-copy') },
  { name: 'futex.wait + notify', metric: 'rtt_us', floor: 'C futex', start: futexRoundTrip('sync') },
  { name: 'futex.waitAsync + notify', metric: 'rtt_us', floor: 'C futex', start: futexRoundTrip('async') },
  { name: 'msgsnd + msgrcv (sync mirror)', metric: 'rtt_us', floor: 'C msgsnd + msgrcv', start: messageQueue('sync') },
  { name: 'msgsnd + msgrcv (kernel-ipc/promises)', metric: 'rtt_us', floor: 'C msgsnd + msgrcv', start: messageQueue('promise') },
  { name: 'semop + shared memory', metric: 'rtt_us', floor: 'C semop + shared memory', start: semaphoresAndMemory },
  { name: 'FIFO (createFifoReader, openFifoWriter)', metric: 'rtt_us', floor: 'C pipe', start: fifo(false) },
  { name: 'child_process send()', metric: 'rtt_us', start: childProcessSend },
  { name: 'Unix socket (node:net)', metric: 'rtt_us', floor: 'C Unix socket', start: unixSocket(false) },
  { name: 'Unix socket, after 1 ms', metric: 'rtt_us', start: unixSocket(false, true) },
  { name: 'worker postMessage', metric: 'rtt_us', start: workerPostMessage(false) },
];

/** 1 MiB at a time from one side to the other. */
export const bulkTransfers: Mechanism[] = [
  { name: 'C memcpy of 1 MiB', metric: 'gbps', start: floor('memcpy') },
  { name: 'C pipe, 1 MiB', metric: 'gbps', start: floor('pipe-bulk') },
  { name: 'C Unix socket, 1 MiB', metric: 'gbps', start: floor('unix-bulk') },
  { name: 'Buffer#copy of 1 MiB', metric: 'gbps', floor: 'C memcpy of 1 MiB', start: bufferCopy },
  { name: 'C shared ring, 1 MiB in, read in place', metric: 'gbps', floor: 'C memcpy of 1 MiB', start: floor('ring-bulk-in-place') },
  { name: 'C shared ring, 1 MiB copied in and out', metric: 'gbps', floor: 'C memcpy of 1 MiB', start: floor('ring-bulk') },
  { name: 'channel, 1 MiB sent, read in place', metric: 'gbps', floor: 'C memcpy of 1 MiB', start: channel('bulk') },
  { name: 'channel, 1 MiB sent, copied out', metric: 'gbps', floor: 'C memcpy of 1 MiB', start: channel('bulk-copy') },
  { name: 'FIFO, 1 MiB', metric: 'gbps', floor: 'C pipe, 1 MiB', start: fifo(true) },
  { name: 'Unix socket (node:net), 1 MiB', metric: 'gbps', floor: 'C Unix socket, 1 MiB', start: unixSocket(true) },
  { name: 'worker postMessage, 1 MiB (copied)', metric: 'gbps', start: workerPostMessage(true) },
];

export const SOCKET = { rtt_us: 'Unix socket (node:net)', gbps: 'Unix socket (node:net), 1 MiB' } as const;
