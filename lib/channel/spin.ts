// A bounded spin: while both ends are awake, the answer comes sooner than a sleep and a wake-up
// would take, and costs no system call.
const SPIN_MS = 0.03;

/** Whether `ready()` came true within a few tens of microseconds of spinning. */
export function spinUntil(ready: () => boolean): boolean {
  const deadline = performance.now() + SPIN_MS;
  for (let i = 1; ; i++) {
    if (ready()) return true;
    if ((i & 63) === 0 && performance.now() > deadline) return false;
  }
}
