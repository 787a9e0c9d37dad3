// Two real Node processes share one System V segment: this one writes 16 MiB and its
// SHA-256 into it; a forked reader opens it by key, hashes the bytes in place (no copy),
// checks them and writes its verdict back.
import { fork } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { SharedMemory } from '../lib';

const HEADER = 64; // [0, 32): SHA-256 of the payload; [32, 64): the reader's verdict
const PAYLOAD = 16 * 1024 * 1024;

async function writer(): Promise<void> {
  const key = 0x4b490000 | (process.pid & 0xffff);
  using shm = SharedMemory.create(key, HEADER + PAYLOAD);
  try {
    const payload = shm.buffer.subarray(HEADER);
    randomFillSync(payload);
    createHash('sha256').update(payload).digest().copy(shm.buffer, 0);
    console.log(`writer ${process.pid}: segment ${shm.id} (key 0x${key.toString(16)}), wrote ${PAYLOAD} random bytes and their SHA-256`);

    const reader = fork(__filename, ['reader', String(key)]);
    const [code] = await once(reader, 'exit');
    const verdict = shm.read(32, 32).toString('utf8').replace(/\0+$/, '');
    console.log(`writer ${process.pid}: reader ${reader.pid} exited with ${code} and wrote back "${verdict}"`);
    console.log(`writer ${process.pid}: last attach/detach by pid ${shm.lastPid}, ${shm.attachCount} attachment(s) left`);
    if (code !== 0 || verdict !== 'verified') process.exitCode = 1;
  } finally {
    shm.remove();
  }
}

function reader(key: number): void {
  using shm = SharedMemory.open(key);
  const started = process.hrtime.bigint();
  const digest = createHash('sha256').update(shm.buffer.subarray(HEADER)).digest();
  const micros = Number(process.hrtime.bigint() - started) / 1000;
  const ok = digest.equals(shm.buffer.subarray(0, 32));
  console.log(`reader ${process.pid}: opened key 0x${key.toString(16)} as segment ${shm.id}, hashed ${shm.size - HEADER} bytes in place in ${micros.toFixed(0)} µs: ${ok ? 'match' : 'MISMATCH'}`);
  shm.write(ok ? 'verified' : 'corrupt', 32);
  process.exitCode = ok ? 0 : 1;
}

if (process.argv[2] === 'reader') reader(Number(process.argv[3]));
else void writer();
