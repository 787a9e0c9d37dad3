import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  SIG_BLOCK, SIG_SETMASK, SIG_UNBLOCK, sigpending, sigprocmask, sigqueue, watchSignals,
} from '../lib';
import { sigwaitinfo } from '../lib/promises';
import { assertAliveWhileWaiting, assertExitWhileWaiting, compileC, parkThreadpool, type Peer, preloading, usePeers } from './helpers';

const run = promisify(execFile);
// glibc's: it keeps 32 and 33 for itself.
const SIGRTMIN = 34;

/** Whether a /proc mask (hex) has signal `signo`. */
function has(mask: string, signo: number): boolean {
  return (BigInt(`0x${mask}`) & (1n << BigInt(signo - 1))) !== 0n;
}

/** Asserts that `signal` stays pending in `peer` and that its handler has not run. */
async function assertHeldBack(peer: Peer, signal: NodeJS.Signals): Promise<void> {
  await sleep(50);
  assert.ok(has(await peer.request<string>('processPending'), constants.signals[signal]), `${signal} is not in ShdPnd`);
  assert.ok((await peer.request<string[]>('sigpending')).includes(signal));
  assert.equal(await peer.request('handled', signal), 0, 'no handler runs while the signal is blocked');
}

/** Unblocks `signal` in `peer` and asserts that its handler then runs exactly once. */
async function assertDeliveredOnce(peer: Peer, signal: NodeJS.Signals): Promise<void> {
  assert.ok((await peer.request<string[]>('sigprocmask', 'SIG_UNBLOCK', [signal])).includes(signal));
  const deadline = Date.now() + 5000;
  while ((await peer.request('handled', signal)) === 0 && Date.now() < deadline) await sleep(5);
  await sleep(50);
  assert.equal(await peer.request('handled', signal), 1);
  assert.deepEqual(await peer.request('sigpending'), []);
}

/**
 * Runs test/fixtures/`name` in a child process, as it may crash: its output, or a failure
 * saying how it ended.
 */
async function runFixture(name: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [join(__dirname, 'fixtures', name), ...args], { timeout: 15000, killSignal: 'SIGKILL' });
    return stdout;
  } catch (error) {
    const { code, signal, stdout, stderr } = error as { code?: number; signal?: string; stdout?: string; stderr?: string };
    if (stdout === undefined) throw error;
    assert.fail(`${name} ended with ${signal ?? `exit code ${code}`}: ${stdout}${stderr}`);
  }
}

describe('sigprocmask', function () {
  this.timeout(20000);
  const newPeer = usePeers();

  it('blocks in every thread: a kill from a shell stays pending, no handler runs; unblocked, it runs once', async () => {
    const peer = newPeer();
    await peer.request('countSignal', 'SIGUSR2');
    await peer.request('startThreadpool');
    await peer.request('startWorker');
    assert.deepEqual(await peer.request('sigprocmask', 'SIG_BLOCK', ['SIGUSR2']), []);
    const masks = await peer.request<string[]>('threadMasks');
    // The main thread, V8's platform workers, the inspector's signal thread, four threadpool
    // threads, a worker's threads.
    assert.ok(masks.length >= 8, `only ${masks.length} threads`);
    assert.deepEqual(masks.filter((mask) => !has(mask, constants.signals.SIGUSR2)), [], 'every thread blocks SIGUSR2');
    execFileSync('kill', ['-USR2', String(peer.pid)]);
    await assertHeldBack(peer, 'SIGUSR2');
    await assertDeliveredOnce(peer, 'SIGUSR2');
  });

  it('reaches threads started after the change', async () => {
    const peer = newPeer({ UV_THREADPOOL_SIZE: '6' });
    const before = (await peer.request<string[]>('threadMasks')).length;
    await peer.request('sigprocmask', SIG_BLOCK, ['SIGTERM', SIGRTMIN + 1]);
    await peer.request('startThreadpool');
    await peer.request('startWorker');
    const masks = await peer.request<string[]>('threadMasks');
    assert.ok(masks.length >= before + 7, `${masks.length} threads, ${before} before`);
    for (const mask of masks) assert.ok(has(mask, constants.signals.SIGTERM) && has(mask, SIGRTMIN + 1), mask);
  });

  it('holds a signal from a parent Node process back while the threadpool is busy', async () => {
    const peer = newPeer();
    await peer.request('countSignal', 'SIGHUP');
    await peer.request('startBusy');
    try {
      await peer.request('sigprocmask', 'SIG_BLOCK', ['SIGHUP']);
      process.kill(peer.pid, 'SIGHUP');
      await assertHeldBack(peer, 'SIGHUP');
      await assertDeliveredOnce(peer, 'SIGHUP');
    } finally {
      await peer.request('stopBusy');
    }
  });

  it('SIG_SETMASK replaces the mask; each call returns the previous one as names', async () => {
    const peer = newPeer();
    assert.deepEqual(await peer.request('sigprocmask', 'SIG_BLOCK', ['SIGHUP', constants.signals.SIGUSR2]), []);
    assert.deepEqual(
      await peer.request('sigprocmask', SIG_SETMASK, ['SIGTERM', 'SIGRTMIN+1', 'SIGRTMAX']),
      ['SIGHUP', 'SIGUSR2'],
    );
    const [main] = await peer.request<string[]>('threadMasks');
    assert.ok(!has(main, constants.signals.SIGHUP) && has(main, constants.signals.SIGTERM));
    assert.deepEqual(await peer.request('sigprocmask', SIG_UNBLOCK, ['SIGTERM']), ['SIGTERM', 'SIGRTMIN+1', 'SIGRTMAX']);
    assert.deepEqual(await peer.request('sigprocmask', 'SIG_BLOCK', []), ['SIGRTMIN+1', 'SIGRTMAX']);
    assert.deepEqual(await peer.request('sigprocmask', 'SIG_SETMASK', []), ['SIGRTMIN+1', 'SIGRTMAX']);
    // Every thread but those that block every signal (the inspector's signal thread).
    const masks = (await peer.request<string[]>('threadMasks')).filter((mask) => !has(mask, constants.signals.SIGHUP));
    assert.ok(masks.length >= 6, `${masks.length} threads`);
    for (const mask of masks) assert.ok(!has(mask, SIGRTMIN + 1) && !has(mask, 64), mask);
  });

  it('takes real-time signals counted from either end, as bash does, and names them as kill -l does', () => {
    const before = sigprocmask(SIG_BLOCK, []);
    const counted = ['SIGRTMIN+20', 'SIGRTMAX-25', 'SIGRTMIN+0', 'SIGRTMAX-0'];
    try {
      assert.deepEqual(sigprocmask(SIG_BLOCK, counted), before);
      const blocked = sigprocmask(SIG_UNBLOCK, ['SIGRTMAX-10', 'SIGRTMIN+5', 'SIGRTMAX-30', 'SIGRTMIN+30']);
      // 34, 39, 54 and 64, as kill -l prints them.
      assert.deepEqual(blocked.filter((name) => !before.includes(name)), ['SIGRTMIN', 'SIGRTMIN+5', 'SIGRTMAX-10', 'SIGRTMAX']);
      assert.deepEqual(sigprocmask(SIG_BLOCK, []), before);
    } finally {
      sigprocmask(SIG_UNBLOCK, [SIGRTMIN + 20, SIGRTMIN + 5, SIGRTMIN, 64]);
    }
    for (const signal of ['SIGRTMIN+31', 'SIGRTMAX-31', 'SIGRTMIN-1', 'SIGRTMAX+1', 'SIGRTMIN+', 'SIGRTMIN+1.5']) {
      assert.throws(() => sigprocmask(SIG_BLOCK, [signal]), { code: 'ERR_UNKNOWN_SIGNAL' }, signal);
    }
    assert.throws(() => sigprocmask(SIG_BLOCK, ['SIGRTMIN+28']), { message: /SIGRTMAX-2 is reserved by kernel-ipc/ });
  });

  it('refuses unknown signals, SIGKILL, SIGSTOP and reserved ones, changing nothing', () => {
    const mask = sigprocmask(SIG_BLOCK, []);
    assert.throws(() => sigprocmask(SIG_BLOCK, ['SIGFOO']), { name: 'TypeError', code: 'ERR_UNKNOWN_SIGNAL', message: /SIGFOO/ });
    assert.throws(() => sigprocmask(SIG_BLOCK, ['SIGURG', 'usr1']), { code: 'ERR_UNKNOWN_SIGNAL' });
    assert.throws(() => sigprocmask(SIG_BLOCK, ['SIGRTMIN+31']), { code: 'ERR_UNKNOWN_SIGNAL' });
    for (const signal of ['SIGKILL', 'SIGSTOP', 9, 19]) {
      assert.throws(() => sigprocmask(SIG_BLOCK, [signal]), {
        name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /SIGKILL and SIGSTOP cannot be blocked/,
      });
    }
    assert.throws(() => sigprocmask(SIG_UNBLOCK, 'SIGRTMAX-2'), { message: /SIGRTMAX-2 is reserved by kernel-ipc/ });
    assert.throws(() => sigprocmask(SIG_BLOCK, ['SIGRTMAX-3']), { message: /SIGRTMAX-3 is reserved by kernel-ipc/ });
    assert.throws(() => sigprocmask(SIG_BLOCK, [32]), { message: /reserved by the C library/ });
    for (const signal of [0, 65, 1.5, NaN]) {
      assert.throws(() => sigprocmask(SIG_BLOCK, [signal]), { name: 'RangeError', message: /"signals\[0\]"/ });
    }
    assert.throws(() => sigprocmask(SIG_BLOCK, [{}] as unknown as string[]), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => sigprocmask(3, []), { code: 'ERR_INVALID_ARG_VALUE', message: /'how'/ });
    assert.throws(() => sigprocmask('SIG_FOO' as 'SIG_BLOCK', []), { code: 'ERR_INVALID_ARG_VALUE', message: /'how'/ });
    assert.throws(() => sigprocmask(null as unknown as number, []), { code: 'ERR_INVALID_ARG_TYPE', message: /"how"/ });
    assert.deepEqual(sigprocmask(SIG_BLOCK, []), mask);
  });
});

describe('signals the runtime depends on', function () {
  this.timeout(20000);
  const faults = ['SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGTRAP', 'SIGSYS'] as const;
  // With SIGKILL, SIGSTOP, glibc's two and kernel-ipc's two (SIGRTMAX-3 and -2).
  const refused = [...faults.map((signal) => constants.signals[signal]), constants.signals.SIGCHLD, 9, 19, 32, 33, 61, 62];

  /** What test/fixtures/runtime-signals.js `mode` reports, once checked that it blocked all it could. */
  async function blockEverything(mode: 'wasm' | 'child-process') {
    const report = JSON.parse(await runFixture('runtime-signals.js', mode)) as {
      refusals: Record<number, { code: string; message: string }>; accepted: number[]; blocked: string; result: string;
    };
    assert.deepEqual(Object.keys(report.refusals).map(Number), [...refused].sort((a, b) => a - b), 'what sigprocmask refuses');
    assert.equal(BigInt(`0x${report.blocked}`), report.accepted.reduce((mask, signo) => mask | (1n << BigInt(signo - 1)), 0n));
    return report;
  }

  it('fault signals are refused: a WebAssembly out-of-bounds access still throws, everything else blocked', async () => {
    const { refusals, result } = await blockEverything('wasm');
    assert.equal(result, 'RuntimeError: memory access out of bounds');
    for (const signal of faults) {
      assert.equal(refusals[constants.signals[signal]].code, 'ERR_INVALID_ARG_VALUE');
      assert.match(refusals[constants.signals[signal]].message, new RegExp(
        `^The argument 'signals' cannot hold ${signal}: SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS report a fault `
        + 'of the thread itself: Linux kills a process that faults with the signal blocked, and V8 turns WebAssembly',
      ));
    }
  });

  it("SIGCHLD is refused: child_process 'exit' events still come, everything else blocked", async () => {
    const { refusals, result } = await blockEverything('child-process');
    assert.equal(result, 'exit 0');
    assert.match(refusals[constants.signals.SIGCHLD].message, /cannot hold SIGCHLD: libuv learns that a child exited from SIGCHLD: .*child_process/);
  });

  it('SIGCHLD and the fault signals cannot be waited for either', async () => {
    assert.throws(() => watchSignals(['SIGURG', 'SIGCHLD']), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /child_process/ });
    await assert.rejects(sigwaitinfo('SIGCHLD'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /child_process/ });
    await assert.rejects(sigwaitinfo(['SIGSEGV']), { code: 'ERR_INVALID_ARG_VALUE', message: /report a fault/ });
  });
});

describe('two copies of kernel-ipc in one process', function () {
  this.timeout(20000);
  const root = join(__dirname, '..', '..');
  let copy: string | undefined;

  // Another installed copy, as npm makes one: its own dist/ and binaries, the same node_modules.
  before(() => {
    copy = mkdtempSync(join(tmpdir(), 'kernel-ipc-copy-'));
    cpSync(join(root, 'package.json'), join(copy, 'package.json'));
    for (const path of ['dist/lib', 'build/Release/kernel_ipc.node', 'prebuilds']) {
      if (existsSync(join(root, path))) cpSync(join(root, path), join(copy, path), { recursive: true });
    }
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
  });
  after(() => {
    if (copy !== undefined) rmSync(copy, { recursive: true, force: true });
  });

  const ways = {
    first: 'through the copy loaded first',
    second: 'through the copy loaded second',
    'at-once': 'by copies each loaded and used on a worker thread of its own, both at once',
  };
  for (const [mode, way] of Object.entries(ways)) {
    it(`share one mask: SIGTERM blocked ${way} stays pending in every thread until the other copy unblocks it`, async () => {
      const report = JSON.parse(await runFixture('two-copies.js', copy!, mode));
      // Two binaries loaded: ours and the copy's.
      assert.equal(report.objects.length, 2, report.objects.join(', '));
      assert.ok(report.objects.some((path: string) => path.startsWith(copy!)), report.objects.join(', '));
      // The main thread, V8's platform threads, the threadpool's.
      assert.ok(report.threads >= 9, `only ${report.threads} threads`);
      assert.deepEqual([report.withoutTerm, report.withoutHup], [0, 0], 'every thread blocks SIGTERM and SIGHUP');
      assert.equal(report.pending, true, 'SIGTERM is in ShdPnd');
      assert.deepEqual(report.listed, [['SIGTERM'], ['SIGTERM']], 'sigpending through either copy');
      assert.equal(report.handled, 1);
    });
  }
});

describe('another library handling SIGRTMAX-3', function () {
  this.timeout(20000);
  let library: string;

  // Preloaded into a child: it takes SIGRTMAX-3 when loaded with FOREIGN_NOW set, else on SIGUSR2.
  before(() => {
    library = compileC(`
      #include <signal.h>
      #include <stdlib.h>
      static void foreign(int signo) { (void)signo; }
      static void take(int signo) {
        (void)signo;
        struct sigaction action = {0};
        action.sa_handler = foreign;
        sigaction(SIGRTMAX - 3, &action, 0);
      }
      __attribute__((constructor)) static void init(void) {
        struct sigaction action = {0};
        action.sa_handler = take;
        sigaction(SIGUSR2, &action, 0);
        if (getenv("FOREIGN_NOW")) take(0);
      }
    `, { shared: true });
  });

  /** sigprocmask in a child with the library preloaded, before and after it is sent SIGUSR2. */
  async function attempts(env: NodeJS.ProcessEnv): Promise<unknown[]> {
    const script = `
      const { sigprocmask } = require(${JSON.stringify(join(__dirname, '..', 'lib'))});
      function attempt() {
        try {
          return sigprocmask('SIG_BLOCK', ['SIGHUP']);
        } catch ({ name, code, message }) {
          return { name, code, message };
        }
      }
      const before = attempt();
      process.kill(process.pid, 'SIGUSR2');
      console.log(JSON.stringify([before, attempt()]));
    `;
    const { stdout } = await run(process.execPath, ['-e', script], {
      env: preloading(library, { ...process.env, ...env }), timeout: 15000, killSignal: 'SIGKILL',
    });
    return JSON.parse(stdout);
  }

  it('sigprocmask fails with an error naming it, rather than taking its signal', async () => {
    const refusal = {
      name: 'Error',
      code: 'ERR_INVALID_STATE',
      message: `Invalid state: SIGRTMAX-3 is handled by another library (${library}): kernel-ipc carries mask changes `
        + 'to every thread with SIGRTMAX-3, and does not take it from another',
    };
    assert.deepEqual(await attempts({ FOREIGN_NOW: '1' }), [refusal, refusal]);
    // Taken after kernel-ipc had it.
    assert.deepEqual(await attempts({}), [[], refusal]);
  });
});

describe('sigqueue, sigpending, sigwaitinfo and watchSignals', function () {
  this.timeout(20000);
  const newPeer = usePeers();
  // Signals whose default action is to do nothing: safe to leave pending in the test process.
  const held = ['SIGURG', 'SIGWINCH'];

  before(() => sigprocmask(SIG_BLOCK, held));
  after(async () => {
    while (sigpending().some((signal) => held.includes(signal))) await sigwaitinfo(held);
    sigprocmask(SIG_UNBLOCK, held);
  });

  it('take a signal a separate process sent, with its sender, and consume it', async () => {
    const waiting = sigwaitinfo(['SIGURG', 'SIGWINCH'], { timeout: 10000 });
    const killer = execFile('kill', ['-URG', String(process.pid)]);
    // Listening from the start: kill may exit before the signal's waiter reports, and an event
    // emitted before anyone listens is gone.
    const exited = once(killer, 'exit');
    const info = await waiting;
    assert.deepEqual(info, { signal: 'SIGURG', signo: constants.signals.SIGURG, code: 0, pid: killer.pid, uid: process.getuid!(), value: undefined });
    await exited;
    assert.deepEqual(sigpending(), []);
  });

  it('take a signal already pending at once', async () => {
    process.kill(process.pid, 'SIGWINCH');
    assert.deepEqual(sigpending(), ['SIGWINCH']);
    const info = await sigwaitinfo('SIGWINCH');
    assert.equal(info.signal, 'SIGWINCH');
    assert.equal(info.pid, process.pid);
    assert.deepEqual(sigpending(), []);
  });

  it('sigqueue carries a number to another process', async () => {
    const peer = newPeer();
    await peer.request('sigprocmask', SIG_BLOCK, ['SIGRTMIN+4']);
    const waiting = peer.request('sigwaitinfo', ['SIGRTMIN+4'], { timeout: 10000 });
    sigqueue(peer.pid, 'SIGRTMIN+4', -12345);
    assert.deepEqual(await waiting, {
      signal: 'SIGRTMIN+4', signo: SIGRTMIN + 4, code: -1, pid: process.pid, uid: process.getuid!(), value: -12345,
    });
  });

  it('reject on timeout or abort without taking the signal that comes later', async () => {
    await assert.rejects(sigwaitinfo('SIGURG', { timeout: 20 }), { name: 'TimeoutError', code: 'ETIMEDOUT', syscall: 'sigwaitinfo' });
    const controller = new AbortController();
    const aborted = sigwaitinfo(['SIGURG'], { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(aborted, { name: 'AbortError' });
    await assert.rejects(sigwaitinfo(['SIGURG'], { signal: AbortSignal.abort() }), { name: 'AbortError' });
    await run('kill', ['-URG', String(process.pid)]);
    assert.deepEqual(sigpending(), ['SIGURG']);
    assert.equal((await sigwaitinfo('SIGURG')).signal, 'SIGURG');
  });

  it('lose no signal when thousands of waits are aborted as signals arrive', async () => {
    const peer = newPeer();
    await peer.request('sigprocmask', SIG_BLOCK, ['SIGRTMIN+4']);
    const count = 2000;
    const taking = peer.request<number[]>('takeQueued', 'SIGRTMIN+4', count);
    for (let i = 0; i < count; i++) {
      sigqueue(peer.pid, 'SIGRTMIN+4', i);
      if (i % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const values = await taking;
    assert.deepEqual(values.sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i));
    assert.deepEqual(await peer.request('sigpending'), []);
  });

  it('wait off the threadpool: a signal arrives while fs.open on FIFOs holds all four threads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kernel-ipc-signals-'));
    const pool = parkThreadpool(dir);
    try {
      const waiting = sigwaitinfo('SIGURG', { timeout: 10000 });
      await run('kill', ['-URG', String(process.pid)]);
      assert.equal((await waiting).signal, 'SIGURG');
    } finally {
      await pool.release();
      rmSync(dir, { recursive: true });
    }
  });

  it('watchSignals yields each signal as it comes; breaking out leaves the next one pending', async () => {
    const peer = newPeer();
    await peer.request('sigprocmask', SIG_BLOCK, ['SIGRTMIN+2', 'SIGRTMIN+3']);
    const watching = peer.request<Array<{ signal: string; value: number; pid: number; uid: number }>>('watch', ['SIGRTMIN+2', 'SIGRTMIN+3'], 3);
    sigqueue(peer.pid, 'SIGRTMIN+2', 1);
    sigqueue(peer.pid, SIGRTMIN + 3, 2);
    sigqueue(peer.pid, 'SIGRTMIN+2', 3);
    const taken = await watching;
    assert.deepEqual(taken.map(({ signal, value }) => [signal, value]).sort(), [['SIGRTMIN+2', 1], ['SIGRTMIN+2', 3], ['SIGRTMIN+3', 2]]);
    for (const info of taken) assert.deepEqual([info.pid, info.uid], [process.pid, process.getuid!()]);
    sigqueue(peer.pid, 'SIGRTMIN+2', 4);
    await sleep(50);
    assert.deepEqual(await peer.request('sigpending'), ['SIGRTMIN+2']);
  });

  it('watchSignals ends at its timeout, and return() ends a waiting next() without taking a signal', async () => {
    const peer = newPeer();
    await peer.request('sigprocmask', SIG_BLOCK, ['SIGRTMIN+4']);
    const ends = await peer.request('watchEnds', ['SIGRTMIN+4'], 30);
    const done = { done: true, value: undefined };
    assert.deepEqual(ends, { timedOut: { name: 'TimeoutError', code: 'ETIMEDOUT' }, returned: done, waiting: done, after: done });
    // No wait is left behind to take it.
    sigqueue(peer.pid, 'SIGRTMIN+4', 1);
    await sleep(50);
    assert.deepEqual(await peer.request('sigpending'), ['SIGRTMIN+4']);
  });

  it('refuse to wait for a signal that is not blocked, or for none', async () => {
    await assert.rejects(sigwaitinfo('SIGTTIN'), { code: 'ERR_INVALID_STATE', message: /SIGTTIN must be blocked first/ });
    assert.throws(() => watchSignals(['SIGURG', 'SIGTTOU']), { code: 'ERR_INVALID_STATE', message: /SIGTTOU/ });
    await assert.rejects(sigwaitinfo([]), { code: 'ERR_INVALID_ARG_VALUE' });
    await assert.rejects(sigwaitinfo('SIGKILL'), { message: /SIGKILL and SIGSTOP cannot be blocked/ });
    assert.throws(() => watchSignals('SIGURG', { timeout: -5 }), { code: 'ERR_OUT_OF_RANGE', message: /"options.timeout"/ });
    await assert.rejects(sigwaitinfo('SIGURG', { ref: 'no' as unknown as boolean }), { message: /"options.ref"/ });
  });

  it('sigqueue checks its arguments, and reports ESRCH like kill', () => {
    assert.throws(() => sigqueue(0, 'SIGURG'), { name: 'RangeError', message: /"pid"/ });
    assert.throws(() => sigqueue(process.pid, 'SIGNOPE'), { code: 'ERR_UNKNOWN_SIGNAL' });
    assert.throws(() => sigqueue(process.pid, 'SIGURG', 2 ** 31), { name: 'RangeError', message: /"value"/ });
    assert.throws(() => sigqueue(0x7fffffff, 0), { name: 'IpcError', code: 'ESRCH', syscall: 'sigqueue' });
  });

  it('a process waiting for a signal stays alive unless ref is false; process.exit() ends it', async () => {
    const output = await assertAliveWhileWaiting('signal', 'SIGUSR2', (pid) => process.kill(pid, 'SIGUSR2'));
    assert.equal(output, 'waiting\nreceived SIGUSR2\nexit 0\n');
    await assertExitWhileWaiting('signal', 'SIGUSR2');
  });

  it('fuzz: garbage only ever throws or rejects with Errors (in a child process)', async () => {
    // Garbage may block or take any signal: the peer is a process that can afford it.
    await newPeer().request('fuzz', 'signals');
  });
});
