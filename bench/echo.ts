// The other side of the benchmarks' round trips and transfers, in a Node process of its own.
// Usage: echo.js <mode> [targets...]; see each mode below.
import { createServer, type Socket } from 'node:net';
import { ChannelReader, ChannelWriter, createFifoReader, futex, msgrcv, msgsnd, openFifoWriter, semop, shmat } from '../lib';
import * as promises from '../lib/promises';

const MiB = 1024 * 1024;
const mebibyte = Buffer.alloc(MiB, 'y');
const [mode, ...targets] = process.argv.slice(2);
// The benchmark went: so does this, wherever it waits on the event loop. The listener must not
// keep the process alive by itself, though, once a mode is done.
process.on('disconnect', () => process.exit(0));
process.channel?.unref();

/** Whether `error` says the object is gone: the benchmark removed it to end the echo. */
function gone(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'EIDRM' || code === 'EINVAL';
}

/** Answers each 4-byte request for n MiB on `socket` with n MiB. */
function serveMebibytes(requests: NodeJS.ReadableStream, out: NodeJS.WritableStream): void {
  let pending = Buffer.alloc(0);
  requests.on('data', async (data: Buffer) => {
    pending = Buffer.concat([pending, data]);
    while (pending.length >= 4) {
      const count = pending.readUInt32LE(0);
      pending = pending.subarray(4);
      for (let i = 0; i < count; i++) {
        if (!out.write(mebibyte)) await new Promise((resolve) => out.once('drain', resolve));
      }
    }
  });
}

async function main(): Promise<void> {
  switch (mode) {
    // msg-sync|msg-promise <msqid>: answers type 1 with type 2 until the queue is removed.
    case 'msg-sync':
    case 'msg-promise': {
      const msqid = Number(targets[0]);
      try {
        for (;;) {
          if (mode === 'msg-sync') msgsnd(msqid, 2, msgrcv(msqid, 64, 1).data);
          else await promises.msgsnd(msqid, 2, (await promises.msgrcv(msqid, 64, 1)).data);
        }
      } catch (error) {
        if (!gone(error)) throw error;
      }
      return;
    }
    // sem <semid> <shmid>: takes semaphore 0, copies the 64-byte request at 512 to 1024, gives 1.
    case 'sem': {
      const [semid, shmid] = targets.map(Number);
      const memory = shmat(shmid);
      const take = [{ num: 0, op: -1 }];
      const give = [{ num: 1, op: 1 }];
      try {
        for (;;) {
          semop(semid, take);
          memory.copy(memory, 1024, 512, 576);
          semop(semid, give);
        }
      } catch (error) {
        if (!gone(error)) throw error;
      }
      return;
    }
    // futex <shmid>: waits for each ping on word 0, answers on word 1, until word 2 says stop.
    case 'futex': {
      const buffer = shmat(Number(targets[0]));
      const words = new Int32Array(buffer.buffer, buffer.byteOffset, 3);
      const parent = process.ppid;
      for (let round = 1; Atomics.load(words, 2) === 0; round++) {
        for (let seen = Atomics.load(words, 0); seen < round && Atomics.load(words, 2) === 0; seen = Atomics.load(words, 0)) {
          // Never for ever: a benchmark killed midway leaves this process to its init.
          if (futex.wait(words, 0, seen, { timeout: 1000 }) === 'timed-out' && process.ppid !== parent) return;
        }
        Atomics.store(words, 1, round);
        futex.notify(words, 1);
      }
      return;
    }
    // process: child_process send() echo.
    case 'process':
      process.channel?.ref();
      process.on('message', (message) => process.send!(message));
      process.on('disconnect', () => process.exit(0));
      return;
    // socket|socket-bulk <path>: echoes, or answers requests for MiB, until the client goes.
    case 'socket':
    case 'socket-bulk': {
      const server = createServer((socket: Socket) => {
        socket.setNoDelay(true);
        if (mode === 'socket') socket.pipe(socket);
        else serveMebibytes(socket, socket);
        socket.on('close', () => server.close());
      });
      server.listen(targets[0], () => process.send!('ready'));
      return;
    }
    // fifo|fifo-bulk <in> <out>: echoes what comes in, or answers requests for MiB, until the
    // writer goes.
    case 'fifo':
    case 'fifo-bulk': {
      const requests = createFifoReader(targets[0]);
      const out = await openFifoWriter(targets[1]);
      if (mode === 'fifo') requests.pipe(out);
      else serveMebibytes(requests, out);
      requests.on('end', () => out.end());
      return;
    }
    // channel|channel-async <requests id> <answers id>: answers each record with itself, until
    // the requests' writer closes. channel-bulk <requests id> <data id>: answers each 4-byte
    // request for n MiB with n records of 1 MiB, each copied in (send).
    case 'channel':
    case 'channel-async':
    case 'channel-bulk': {
      const requests = await ChannelReader.open({ id: Number(targets[0]) });
      const answers = await ChannelWriter.open({ id: Number(targets[1]) });
      for (;;) {
        const record = mode === 'channel' ? requests.receiveSync() : await requests.receive();
        if (record === null) break;
        if (mode === 'channel') answers.sendSync(record);
        else if (mode === 'channel-async') await answers.send(record);
        else {
          const count = record.readUInt32LE(0);
          for (let i = 0; i < count; i++) await answers.send(mebibyte);
        }
      }
      answers.close();
      requests.close();
      return;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

void main();
