// A bounded, adaptive spin: while both ends are awake, the answer comes sooner than a sleep and
// a wake-up would take, and costs no system call. How long to spin follows how long recent waits
// lasted (as glibc's adaptive mutexes do): long enough to catch a peer that is busy producing
// the answer, short when the peer is idle and spinning would only burn a CPU.
//
// Past its first 20 µs a spin yields the CPU between looks: the process it waits for may be
// queued on this very CPU (the kernel tends to wake a process on the CPU of the one that woke
// it), and would otherwise wait for the spin to end. Just after waking another process it
// yields from the start. (Yielding sooner halves a round trip between two processes that share
// a CPU, but makes a system call of one message in a hundred between two that do not.)
import { native } from '../native';

const MIN_SPIN_MS = 0.02;
const MAX_SPIN_MS = 0.2;
/** Plain loads until then: an awake peer on another CPU has answered by far sooner. */
const PLAIN_SPIN_MS = 0.02;

/** Whether this thread has woken another process since its last spin. */
let wokeAnother = false;

/** This thread has just woken another process (which may be queued on its CPU). */
export function wokeAnotherProcess(): void {
  wokeAnother = true;
}

export class Spin {
  #budget = 0.03;
  /** When the current wait began to keep time (performance.now()), or -1 if it ended sooner. */
  #started = -1;

  /**
   * Whether `ready()` came true within the current budget of spinning. The clock is read only
   * every 64 looks, the first time after 64 (reading it costs as much as a record does): a wait
   * that ends within them, as one does while both ends are awake, never reads it.
   */
  until(ready: () => boolean): boolean {
    this.#started = -1;
    let deadline = 0;
    let plainUntil = 0;
    const yieldAtOnce = wokeAnother;
    wokeAnother = false;
    for (let i = 1; ; i++) {
      if (ready()) return true;
      if ((i & 63) === 0) {
        const now = performance.now();
        if (this.#started < 0) {
          this.#started = now;
          deadline = now + this.#budget;
          plainUntil = yieldAtOnce ? now : now + PLAIN_SPIN_MS;
        } else if (now > deadline) {
          return false;
        }
        if (now > plainUntil) native.schedYield();
      }
    }
  }

  /**
   * Once the wait that until() began is over (spun, then perhaps slept): the next spin lasts
   * twice as long as this wait (with a margin) if spinning that long would have caught it, the
   * least otherwise.
   */
  waited(): void {
    const elapsed = this.#started < 0 ? 0 : performance.now() - this.#started;
    const target = elapsed <= MAX_SPIN_MS ? Math.min(MAX_SPIN_MS, 2 * elapsed + MIN_SPIN_MS) : MIN_SPIN_MS;
    this.#budget += (target - this.#budget) / 4;
  }
}
