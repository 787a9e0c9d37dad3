// The other side of the futex ping-pong: waits for each ping on word 0 and answers it on
// word 1, until word 2 says stop. Usage: futex-echo.js <shmid>
import { futex, shmat, shmdt } from '../lib';

const buffer = shmat(Number(process.argv[2]));
const words = new Int32Array(buffer.buffer, buffer.byteOffset, 3);
for (let round = 1; Atomics.load(words, 2) === 0; round++) {
  for (let seen = Atomics.load(words, 0); seen < round && Atomics.load(words, 2) === 0; seen = Atomics.load(words, 0)) {
    futex.wait(words, 0, seen);
  }
  Atomics.store(words, 1, round);
  futex.notify(words, 1);
}
shmdt(buffer);
