// npm run bench: medians of several runs, printed side by side. Timings live here, never in tests.
import { messageQueues } from './msg';
import { sharedMemory } from './shm';

async function main(): Promise<void> {
  sharedMemory();
  await messageQueues();
}

void main();
