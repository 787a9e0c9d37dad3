// Named pipes: mkfifo, and FIFO streams that never block the event loop or libuv's threadpool.
// fs.createReadStream(fifo) parks a threadpool thread in open() until a writer comes; here the
// descriptor is opened non-blocking and streamed by a net.Socket on the event loop, and a writer
// that has to wait for a reader waits on one of the addon's own threads.
import { closeSync, fstatSync, statSync } from 'node:fs';
import { Socket } from 'node:net';
import { notFifo } from './errors';
import { native } from './native';
import { validateWaitOptions, type ValidWaitOptions, wait, type WaitOptions } from './waiter';
import { validateBoolean, validateMode, validateOptions, validatePath } from './validate';

/**
 * The most bytes one write(2) to a pipe moves atomically: a write of at most PIPE_BUF bytes is
 * never split or interleaved with other writers' data; a longer one may be.
 */
export const PIPE_BUF = 4096;

export const fifoConstants = { PIPE_BUF } as const;

/** Creates a FIFO at `path` with permissions `mode` (less the umask, as in C). */
export function mkfifo(path: string, mode = 0o600): void {
  native.mkfifo(validatePath(path), validateMode(mode));
}

export interface FifoReaderOptions {
  /**
   * Stay open across writers coming and going (a "server" FIFO): the reader then never sees
   * end-of-file, and ends when destroyed. Default false: the stream ends when the last writer
   * closes.
   */
  keepOpen?: boolean;
}

/**
 * Refuses a path that is there but not a FIFO before opening it: opening a device can have
 * effects of its own. (What is not there, or cannot be looked at, open reports.)
 */
function checkNotOther(path: string): void {
  const stats = statSync(path, { throwIfNoEntry: false });
  if (stats !== undefined && !stats.isFIFO()) throw notFifo(path);
}

/** A stream over `fd`, which it owns from here on; closes `fd` if it is not a FIFO after all. */
function fifoSocket(fd: number, path: string, forWriting: boolean): Socket {
  let socket: Socket;
  try {
    if (!fstatSync(fd).isFIFO()) throw notFifo(path);
    socket = new Socket({ fd, readable: !forWriting, writable: forWriting });
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  if (forWriting) {
    // Write each chunk with a write(2) of its own: net.Socket would gather queued chunks into
    // one writev, and a pipe splits a write over PIPE_BUF bytes wherever it fills up, so a
    // chunk of at most PIPE_BUF bytes would no longer be atomic.
    (socket as unknown as { _writev: unknown })._writev = null;
  }
  return socket;
}

/**
 * Opens the FIFO at `path` for reading, at once: there need not be a writer yet. Data arrives as
 * writers write; the stream ends when the last writer closes (unless `keepOpen`).
 */
export function createFifoReader(path: string, options?: FifoReaderOptions): Socket {
  validatePath(path);
  const { keepOpen = false } = validateOptions<FifoReaderOptions>(options);
  validateBoolean(keepOpen, 'options.keepOpen');
  checkNotOther(path);
  const fd = native.fifoOpen(path, false);
  const socket = fifoSocket(fd, path, false);
  if (keepOpen) {
    // A writer of our own that never writes: while one is open, a reader never sees EOF.
    // Opened through the reader's descriptor, so that it is the same FIFO whatever `path` is now.
    let keeper: number;
    try {
      keeper = native.fifoOpen(`/proc/self/fd/${fd}`, true);
    } catch (error) {
      socket.destroy();
      throw error;
    }
    socket.once('close', () => closeSync(keeper));
  }
  return socket;
}

/**
 * Opens the FIFO at `path` for writing. Resolves with the stream once the FIFO has a reader:
 * at once if it has one, else when one opens it. The wait blocks neither the event loop nor the
 * threadpool; `signal` and `timeout` end it. Each write of at most PIPE_BUF bytes reaches the
 * reader whole, never interleaved with other writers' data. A write after the last reader has
 * gone fails with EPIPE.
 */
export function openFifoWriter(path: string, options?: WaitOptions): Promise<Socket> {
  let waitOptions: ValidWaitOptions;
  try {
    validatePath(path);
    waitOptions = validateWaitOptions(options);
    checkNotOther(path);
  } catch (error) {
    return Promise.reject(error);
  }
  return wait('open', waitOptions, (ref) => native.fifoOpenWriterAsync(path, ref), ({ fd }) => fifoSocket(fd, path, true));
}
