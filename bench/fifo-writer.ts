// The writing side of bench/fifo.ts: writes <mebibytes> MiB into the FIFO at <path> in 64 KiB
// chunks, with kernel-ipc's writer or with fs.createWriteStream.
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { openFifoWriter } from '../lib';

const [path, kind, mebibytes] = process.argv.slice(2);

async function main(): Promise<void> {
  const stream: Writable = kind === 'fs' ? createWriteStream(path) : await openFifoWriter(path);
  const chunk = Buffer.alloc(64 * 1024, 'x');
  for (let i = 0; i < Number(mebibytes) * 16; i++) {
    if (!stream.write(chunk)) await new Promise((resolve) => stream.once('drain', resolve));
  }
  stream.end();
}

void main();
