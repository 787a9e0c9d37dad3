// npm run bench: medians of several runs, printed side by side. Timings live here, never in tests.
import { fifos } from './fifo';
import { futexes } from './futex';
import { messageQueues } from './msg';
import { pendingCalls } from './pending';
import { semaphores } from './sem';
import { sharedMemory } from './shm';

async function main(): Promise<void> {
  sharedMemory();
  await messageQueues();
  await semaphores();
  await futexes();
  await fifos();
  await pendingCalls();
}

void main();
