// A bounded, adaptive spin: while both ends are awake, the answer comes sooner than a sleep and
// a wake-up would take, and costs no system call. How long to spin follows how long recent waits
// lasted (as glibc's adaptive mutexes do): long enough to catch a peer that is busy producing
// the answer, short when the peer is idle and spinning would only burn a CPU.
const MIN_SPIN_MS = 0.02;
const MAX_SPIN_MS = 0.2;

export class Spin {
  #budget = 0.03;

  /** Whether `ready()` came true within the current budget of spinning. */
  until(ready: () => boolean): boolean {
    const deadline = performance.now() + this.#budget;
    for (let i = 1; ; i++) {
      if (ready()) return true;
      if ((i & 63) === 0 && performance.now() > deadline) return false;
    }
  }

  /**
   * After a wait that lasted `elapsed` ms, spinning then perhaps sleeping: the next spin lasts
   * twice that (with a margin) if spinning that long would have caught it, the least otherwise.
   */
  waited(elapsed: number): void {
    const target = elapsed <= MAX_SPIN_MS ? Math.min(MAX_SPIN_MS, 2 * elapsed + MIN_SPIN_MS) : MIN_SPIN_MS;
    this.#budget += (target - this.#budget) / 4;
  }
}
