// Shared by the specs: cleanup of kernel objects, C programs, and peer processes.
import assert from 'node:assert/strict';
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextImmediate } from 'node:timers/promises';
import { IPC_RMID, type ReadOnlyBuffer, shmat, shmctl, shmdt, shmget } from '../lib';

/** A key unlikely to be in use; tests create with IPC_EXCL, so a clash fails loudly. */
export function randomKey(): number {
  return randomInt(0x10000000, 0x7fffffff);
}

function ignoreGone(error: unknown): void {
  const code = (error as { code?: string }).code;
  if (code !== 'EINVAL' && code !== 'EIDRM') throw error;
}

/**
 * Tracks the segments and attachments a test makes and, after each test (passed or
 * failed), detaches and removes them.
 */
export function useShmCleanup() {
  const ids = new Set<number>();
  const views = new Set<ArrayBufferView | ReadOnlyBuffer>();
  afterEach(() => {
    for (const view of views) {
      try {
        shmdt(view);
      } catch (error) {
        ignoreGone(error);
      }
    }
    for (const id of ids) {
      try {
        shmctl(id, IPC_RMID);
      } catch (error) {
        ignoreGone(error);
      }
    }
    views.clear();
    ids.clear();
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

/** Lets GC run and the finalizers it queued (Node runs them from setImmediate) finish. */
export async function collectGarbage(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    global.gc!();
    await nextImmediate();
  }
}

/** Compiles a C program once per content (cached under the temp dir); returns its path. */
export function compileC(source: string): string {
  const dir = join(tmpdir(), 'kernel-ipc-test-c');
  mkdirSync(dir, { recursive: true });
  const name = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const binary = join(dir, name);
  if (!existsSync(binary)) {
    writeFileSync(`${binary}.c`, source);
    execFileSync('cc', ['-O2', '-Wall', '-o', binary, `${binary}.c`]);
  }
  return binary;
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

  constructor() {
    this.child = fork(join(__dirname, 'fixtures', 'peer.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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
export function usePeers(): () => Peer {
  const peers: Peer[] = [];
  afterEach(async () => {
    await Promise.all(peers.map((peer) => peer.stop()));
    peers.length = 0;
  });
  return () => {
    const peer = new Peer();
    peers.push(peer);
    return peer;
  };
}

/** Asserts that `fn` throws an IpcError with this errno code and syscall. */
export function assertErrno(fn: () => unknown, code: string, syscall: string): void {
  assert.throws(fn, (error: Error & { code?: string; errno?: number; syscall?: string }) => {
    assert.equal(error.name, 'IpcError');
    assert.equal(error.code, code);
    assert.equal(error.syscall, syscall);
    assert.equal(typeof error.errno, 'number');
    assert.ok(error.errno! < 0);
    assert.match(error.message, new RegExp(`^${code}: [a-z].*, ${syscall}`));
    return true;
  });
}
