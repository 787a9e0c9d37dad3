// The other side of the round-trip benchmarks: answers every message until told to stop.
// Usage: msg-echo.js sync|promise <msqid> | process | socket <path>
import { createServer } from 'node:net';
import { msgrcv, msgsnd } from '../lib';
import * as promises from '../lib/promises';

const [mode, target] = process.argv.slice(2);

async function main(): Promise<void> {
  switch (mode) {
    case 'sync': {
      const msqid = Number(target);
      // A type 1 message is answered as type 2; an empty one ends it.
      for (;;) {
        const { data } = msgrcv(msqid, 64, 1);
        if (data.length === 0) return;
        msgsnd(msqid, 2, data);
      }
    }
    case 'promise': {
      const msqid = Number(target);
      for (;;) {
        const { data } = await promises.msgrcv(msqid, 64, 1);
        if (data.length === 0) return;
        await promises.msgsnd(msqid, 2, data);
      }
    }
    case 'process':
      process.on('message', (message) => process.send!(message));
      process.on('disconnect', () => process.exit(0));
      return;
    case 'socket': {
      const server = createServer((socket) => {
        socket.setNoDelay(true);
        socket.pipe(socket);
        socket.on('close', () => server.close());
      });
      server.listen(target, () => process.send!('listening'));
      return;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

void main();
