// Shared by the specs: cleanup of kernel objects, C programs, and peer processes.
import assert from 'node:assert/strict';
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, constants as fsConstants, openSync, promises as fsPromises, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextImmediate, setTimeout as sleep } from 'node:timers/promises';
import { compileC } from '../tools/compile-c';
export { compileC };
import { native } from '../lib/native';
import {
  IPC_PRIVATE, IPC_RMID, mkfifo, msgctl, msgget, type ReadOnlyBuffer, semctl, semget, shmat, shmctl, shmdt, shmget,
} from '../lib';

/**
 * mulberry32: a small seeded generator, so that a fuzz failure can be replayed with
 * FUZZ_SEED=<seed>. Returns numbers in [0, 1).
 */
function seededRandom(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A fuzz run's randomness: FUZZ_SEED=<seed> replays the run that reported that seed. */
export function fuzzer() {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1e9);
  const next = seededRandom(seed);
  return {
    seed,
    next,
    pick: <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)],
  };
}

export type FuzzTarget = [name: string, fn: (...args: any[]) => unknown];

/**
 * Makes `calls` calls of random `targets` with up to `maxArgs` random `values` each (running
 * `between` every hundred calls), and checks that each only ever throws or rejects with an
 * Error, and that those named `promises.*` never throw, whatever they are given: they reject,
 * as fs/promises does. Resolves once every promise a call returned has settled.
 */
export async function fuzzCalls(
  { seed, next, pick }: ReturnType<typeof fuzzer>,
  targets: FuzzTarget[],
  values: unknown[],
  { calls, maxArgs, between }: { calls: number; maxArgs: number; between?: () => void },
): Promise<void> {
  const pending: Array<Promise<unknown>> = [];
  for (let i = 0; i < calls; i++) {
    const [name, fn] = pick(targets);
    const args = Array.from({ length: Math.floor(next() * (maxArgs + 1)) }, () => pick(values));
    try {
      const result = fn(...args);
      if (name.startsWith('promises.')) assert.ok(result instanceof Promise, `${name} returned no promise (seed ${seed})`);
      if (result instanceof Promise) {
        pending.push(result.catch((error) => {
          assert.ok(error instanceof Error, `${name} rejected with a non-Error (seed ${seed})`);
        }));
      }
    } catch (error) {
      assert.ok(!name.startsWith('promises.'), `${name} threw ${error} instead of rejecting (seed ${seed})`);
      assert.ok(error instanceof Error, `${name} threw a non-Error (seed ${seed})`);
    }
    if (i % 100 === 0) between?.();
  }
  await Promise.all(pending);
}

/**
 * Runs a fuzz of test/fixtures/fuzz.ts in a peer with an IPC namespace of its own, so that
 * garbage ids and keys cannot reach other programs' objects; rejects with what it found.
 */
export async function fuzzInPrivateNamespace(newPeer: ReturnType<typeof usePeers>, name: string): Promise<void> {
  const peer = newPeer(undefined, { privateIpc: true });
  assert.notEqual(await peer.request('ipcNamespace'), readlinkSync('/proc/self/ns/ipc'), 'the peer has a namespace of its own');
  await peer.request('fuzz', name);
}

/** Fuzzed options for a call that could wait: a 5 ms timeout, so garbage cannot wait for ever. */
export function briefly(options: unknown): any {
  if (options === undefined) return { timeout: 5 };
  return typeof options === 'object' && options !== null ? { ...options, timeout: 5 } : options;
}

/**
 * Starts `call` with a signal that is aborted at once, after a microtask, an immediate or a
 * timer turn, or never, one time in five each: for races between abort and completion.
 */
export function randomlyAborted<T>(call: (signal: AbortSignal) => Promise<T>): { result: Promise<T>; aborting: boolean; signal: AbortSignal } {
  const controller = new AbortController();
  const result = call(controller.signal);
  const abort = () => controller.abort();
  const when = randomInt(5);
  if (when === 0) abort();
  else if (when === 1) queueMicrotask(abort);
  else if (when === 2) setImmediate(abort);
  else if (when === 3) setTimeout(abort, 0);
  return { result, aborting: when < 4, signal: controller.signal };
}

/**
 * Watches native[name] (a call that completes at once or returns the id of a waiter call) for
 * the test's duration: `waited` tells whether its latest call went to a waiter thread, so a race
 * test can tell its aborts met calls in flight, not only calls that had completed.
 */
export function useWaitSpy(name: 'msgrcvAsync' | 'semopAsync'): { readonly waited: boolean } {
  const spy = { waited: false };
  const original = native[name] as (...args: unknown[]) => unknown;
  beforeEach(() => {
    (native as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      const result = original(...args);
      spy.waited = typeof result === 'number';
      return result;
    };
  });
  afterEach(() => {
    (native as unknown as Record<string, unknown>)[name] = original;
  });
  return spy;
}

/** A key unlikely to be in use; tests create with IPC_EXCL, so a clash fails loudly. */
export function randomKey(): number {
  return randomInt(0x10000000, 0x7fffffff);
}

function ignoreGone(error: unknown): void {
  const code = (error as { code?: string }).code;
  if (code !== 'EINVAL' && code !== 'EIDRM') throw error;
}

/** Runs `release` on each item after the test (passed or failed); gone already is fine. */
function releaseAll<T>(items: Set<T>, release: (item: T) => void): void {
  for (const item of items) {
    try {
      release(item);
    } catch (error) {
      ignoreGone(error);
    }
  }
  items.clear();
}

/**
 * Tracks the segments and attachments a test makes and, after each test (passed or
 * failed), detaches and removes them.
 */
export function useShmCleanup() {
  const ids = new Set<number>();
  const views = new Set<ArrayBufferView | ReadOnlyBuffer>();
  afterEach(() => {
    releaseAll(views, (view) => shmdt(view));
    releaseAll(ids, (id) => shmctl(id, IPC_RMID));
  });
  return {
    track(id: number): number {
      ids.add(id);
      return id;
    },
    keep<V extends ArrayBufferView | ReadOnlyBuffer>(view: V): V {
      views.add(view);
      return view;
    },
    shmget(key: number, size: number, flags: number): number {
      return this.track(shmget(key, size, flags));
    },
    shmat(id: number): Buffer {
      return this.keep(shmat(id));
    },
  };
}

/**
 * An LD_PRELOAD library that makes the kernel refuse one thing in the process it is loaded
 * into: a seccomp filter fails `syscall` with `errno` (C names) where each of `args`, an
 * argument's index and the value of its low 32 bits, matches; everything else is allowed.
 */
export function seccompRefusal(syscall: string, args: Array<[index: number, value: string]>, errno: string): string {
  // Instructions 0 and 1 check the call; each argument takes two; the last two return.
  const allow = 2 * args.length + 3;
  const checks = args.map(([index, value], i) => `
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[${index}])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ${value}, 0, ${allow - (4 + 2 * i)}),`).join('');
  return compileC(`
    #include <errno.h>
    #include <linux/filter.h>
    #include <linux/seccomp.h>
    #include <stddef.h>
    #include <sys/mman.h>
    #include <sys/prctl.h>
    #include <sys/syscall.h>
    __attribute__((constructor)) static void refuse(void) {
      struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_${syscall}, 0, ${allow - 2}),${checks}
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ${errno}),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      };
      struct sock_fprog program = { sizeof filter / sizeof filter[0], filter };
      prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program);
    }
  `, { shared: true });
}

/**
 * Whether the suite runs under AddressSanitizer (`npm run test:sanitize`): its runtime needs
 * /proc and anonymous memory of its own, which some tests take away from a child on purpose.
 */
/** Whether the suite runs as root, as CI does: some tests need it. */
export const asRoot = process.getuid?.() === 0;

/**
 * A test that only root can make (a process of another user, huge pages): for anyone else it
 * is pending, its title saying why.
 */
export function itAsRoot(title: string, reason: string, fn: (this: Mocha.Context) => void | PromiseLike<unknown>): Mocha.Test {
  return asRoot ? it(title, fn as Mocha.AsyncFunc) : it.skip(`${title} (skipped, not root: ${reason})`);
}

/**
 * unshare's arguments for an IPC namespace of a process's own: root has the right to one;
 * anyone else makes a user namespace for it first (where the kernel lets users have one).
 */
export const privateIpcArgs = asRoot ? ['--ipc'] : ['--user', '--map-root-user', '--ipc'];

export const underSanitizers = /\blibasan\b/.test(process.env.LD_PRELOAD ?? '');

/**
 * This process's environment with `library` preloaded as well, after what it preloads already
 * (`npm run test:sanitize` preloads the sanitizers' runtime, which must come first).
 */
export function preloading(library: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, LD_PRELOAD: [process.env.LD_PRELOAD, library].filter(Boolean).join(':') };
}

/** Lets GC run and the finalizers it queued (Node runs them from setImmediate) finish. */
export async function collectGarbage(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    global.gc!();
    await nextImmediate();
  }
}

interface Reply {
  id: number;
  value?: unknown;
  error?: { name: string; message: string; code?: string; errno?: number; syscall?: string };
}

/**
 * Another Node process (test/fixtures/peer.ts) that runs kernel-ipc calls on request, so a
 * test can drive both sides of a cross-process exchange.
 */
export class Peer {
  readonly child: ChildProcess;
  #next = 0;
  #pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();

  /**
   * With `privateIpc`, the peer runs in an IPC namespace of its own (unshare): it
   * sees only the System V objects it makes, and they go when it ends.
   */
  constructor(env?: NodeJS.ProcessEnv, { privateIpc = false } = {}) {
    this.child = fork(join(__dirname, 'fixtures', 'peer.js'), [], {
      env: env && { ...process.env, ...env },
      ...(privateIpc && { execPath: 'unshare', execArgv: [...privateIpcArgs, process.execPath, '--expose-gc'] }),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Buffers and errors cross as themselves.
      serialization: 'advanced',
    });
    this.child.on('message', (reply: Reply) => {
      const waiter = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (reply.error) waiter?.reject(Object.assign(new Error(reply.error.message), reply.error));
      else waiter?.resolve(reply.value);
    });
    this.child.on('exit', (code, signal) => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error(`peer exited (${code ?? signal})`));
      this.#pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Runs `op` in the peer; see test/fixtures/peer.ts for the operations. */
  request<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ id, op, args });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** Peers started in a test are stopped after it, even when it fails. */
export function usePeers(): (...args: ConstructorParameters<typeof Peer>) => Peer {
  const peers: Peer[] = [];
  afterEach(async () => {
    await Promise.all(peers.map((peer) => peer.stop()));
    peers.length = 0;
  });
  return (...args) => {
    const peer = new Peer(...args);
    peers.push(peer);
    return peer;
  };
}

/** Tracks the queues a test makes and removes them after it, passed or failed. */
export function useMsgCleanup() {
  const ids = new Set<number>();
  afterEach(() => releaseAll(ids, (id) => msgctl(id, IPC_RMID)));
  return {
    track(id: number): number {
      ids.add(id);
      return id;
    },
    msgget(key: number, flags: number): number {
      return this.track(msgget(key, flags));
    },
    /** A new private queue. */
    queue(): number {
      return this.track(msgget(IPC_PRIVATE, 0o600));
    },
  };
}

/** Tracks the semaphore sets a test makes and removes them after it, passed or failed. */
export function useSemCleanup() {
  const ids = new Set<number>();
  afterEach(() => releaseAll(ids, (id) => semctl(id, 0, IPC_RMID)));
  return {
    track(id: number): number {
      ids.add(id);
      return id;
    },
    semget(key: number, nsems: number, flags: number): number {
      return this.track(semget(key, nsems, flags));
    },
    /** A new private set of `nsems` semaphores, all 0. */
    set(nsems = 1): number {
      return this.track(semget(IPC_PRIVATE, nsems, 0o600));
    },
  };
}

/**
 * Asserts that a time the kernel recorded (IPC_STAT's whole seconds, as a Date or a number)
 * is now: the kernel truncates to the second and reads its own clock, so allow 2 s either way.
 */
export function assertRecent(time: Date | number | null): void {
  assert.ok(time !== null && time !== 0, 'expected a time, got none');
  const seconds = time instanceof Date ? time.getTime() / 1000 : time;
  const now = Date.now() / 1000;
  assert.ok(Math.abs(seconds - now) <= 2, `${seconds} is not within 2 s of ${now}`);
}

/** Asserts that an IpcError has this errno code and syscall. */
export function assertIpcError(error: unknown, code: string, syscall: string): true {
  const failure = error as Error & { code?: string; errno?: number; syscall?: string };
  assert.equal(failure.name, 'IpcError', `expected IpcError ${code}, got ${failure.stack}`);
  assert.equal(failure.code, code);
  assert.equal(failure.syscall, syscall);
  assert.equal(typeof failure.errno, 'number');
  assert.ok(failure.errno! < 0);
  assert.match(failure.message, new RegExp(`^${code}: [a-z].*, ${syscall}`));
  return true;
}

/** Asserts that `fn` throws an IpcError with this errno code and syscall. */
export function assertErrno(fn: () => unknown, code: string, syscall: string): void {
  assert.throws(fn, (error) => assertIpcError(error, code, syscall));
}

/** test/fixtures/pending.js: a process with calls of `kind` waiting on `target` (see there). */
export function startPending(kind: string, mode: string, target: string | number): ChildProcess {
  // One that hangs is killed before mocha's timeout, so the test fails instead of leaving it.
  return execFile(process.execPath, [join(__dirname, 'fixtures', 'pending.js'), kind, mode, String(target)], { encoding: 'utf8', timeout: 8000 });
}

/** Everything `child` prints, once it has exited. */
async function outputOf(child: ChildProcess): Promise<string> {
  const [stdout] = await Promise.all([
    new Promise<string>((resolve) => {
      let text = '';
      child.stdout!.on('data', (chunk: string) => (text += chunk)).on('end', () => resolve(text));
    }),
    once(child, 'exit'),
  ]);
  return stdout;
}

/**
 * Asserts that a process with a call of `kind` waiting on `target` stays alive, as with a
 * socket read, until `release(pid)` lets the call complete, then exits 0; that with ref: false
 * it exits at once; and that with ref: false, an abort from a timer still settles the call
 * before the process exits. Resolves with what the first process printed.
 */
export async function assertAliveWhileWaiting(kind: string, target: string | number, release: (pid: number) => unknown): Promise<string> {
  const alive = startPending(kind, 'ref', target);
  let output = '';
  alive.stdout!.on('data', (text: string) => (output += text));
  const exited = once(alive, 'exit');
  await waitUntil(() => output !== '');
  assert.equal(output, 'waiting\n');
  await sleep(100);
  assert.equal(alive.exitCode, null);
  await release(alive.pid!);
  const [code] = await exited;
  assert.equal(code, 0);
  assert.equal(await outputOf(startPending(kind, 'unref', target)), 'waiting\nexit 0\n');
  assert.equal(await outputOf(startPending(kind, 'unref-abort', target)), 'waiting\nrejected AbortError\nexit 0\n');
  return output;
}

/**
 * Asserts that process.exit() ends a process with calls of `kind` waiting on `target`, with its
 * own code: promises pending ('exit'), or a worker blocked in the synchronous mirror ('exit-worker').
 */
export async function assertExitWhileWaiting(kind: string, target: string | number, mode = 'exit'): Promise<void> {
  assert.deepEqual(await once(startPending(kind, mode, target), 'exit'), [3, null]);
}

/**
 * Holds all four threadpool threads in Node's own fs.open of FIFOs without writers (in `dir`),
 * as fs.createReadStream(fifo) would; release() opens each for writing (without the pool) so
 * they finish, and closes everything.
 */
export function parkThreadpool(dir: string): { release(): Promise<void> } {
  const fifos = [0, 1, 2, 3].map((i) => join(dir, `parked${i}`));
  for (const path of fifos) mkfifo(path);
  const opened = fifos.map((path) => fsPromises.open(path, 'r'));
  return {
    async release() {
      const writers = fifos.map((path) => openSync(path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
      for (const handle of await Promise.all(opened)) await handle.close();
      for (const fd of writers) closeSync(fd);
    },
  };
}

/** Polls `condition` every few ms, for up to 10 s: for a state another process or thread reaches. */
export async function waitUntil(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${condition}`);
    await sleep(2);
  }
}
