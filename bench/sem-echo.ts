// The other side of the semaphore ping-pong: waits for semaphore 0, answers on semaphore 1,
// until the set is removed. Usage: sem-echo.js <semid>
import { semop } from '../lib';

const semid = Number(process.argv[2]);
const take = [{ num: 0, op: -1 }];
const give = [{ num: 1, op: 1 }];
try {
  for (;;) {
    semop(semid, take);
    semop(semid, give);
  }
} catch (error) {
  const code = (error as { code?: string }).code;
  if (code !== 'EIDRM' && code !== 'EINVAL') throw error;
}
