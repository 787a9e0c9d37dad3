// Where the benchmark's processes run. On a machine of two CPUs the kernel tends to queue a
// woken process on the CPU of the process that woke it, and two processes that spin while they
// wait for each other then share one CPU for a while: a round trip takes 10 to 100 times longer
// than on two CPUs, and which of the two a run met made figures swing from run to run. So the
// benchmark's main thread stays on one CPU and every process it talks to on another (threads it
// starts later, workers and waiters, inherit its CPU); the same-CPU case is measured apart.
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';

export interface Placement {
  /** The CPU of this process's main thread. */
  self: number;
  /** The CPU of every other process a row starts. */
  peer: number;
}

let current: Placement | undefined;

function canPin(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Pins this process's main thread, and the processes started from now on; false if it cannot. */
export function place(placement: Placement): boolean {
  if (cpus().length <= Math.max(placement.self, placement.peer) || !canPin()) return false;
  execFileSync('taskset', ['-cp', String(placement.self), String(process.pid)], { stdio: 'ignore' });
  current = placement;
  return true;
}

/** The CPU of the processes started from now on, if they are pinned. */
export function peerCpu(): number | undefined {
  return current?.peer;
}

/** The CPUs a C floor's two processes take: its measuring side, then its other side. */
export function floorCpus(): string[] {
  return current === undefined ? [] : [String(current.self), String(current.peer)];
}

export function describePlacement(): string {
  return current === undefined ? 'processes placed by the kernel' : `this process on CPU ${current.self}, its peers on CPU ${current.peer}`;
}
