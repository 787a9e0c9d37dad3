// Compiles the small C programs the tests and the benchmark run beside Node.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Compiles C source once per content (cached under the temp dir) into a program, or with
 * `shared` into a library to LD_PRELOAD; returns its path.
 */
export function compileC(source: string, { shared = false } = {}): string {
  const dir = join(tmpdir(), 'kernel-ipc-c');
  mkdirSync(dir, { recursive: true });
  const name = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const binary = join(dir, shared ? `lib${name}.so` : name);
  if (!existsSync(binary)) {
    writeFileSync(`${binary}.c`, source);
    // Built under another name and renamed, so a concurrent run never sees half a binary.
    execFileSync('cc', ['-O2', '-Wall', ...(shared ? ['-shared', '-fPIC'] : []), '-o', `${binary}.${process.pid}`, `${binary}.c`]);
    renameSync(`${binary}.${process.pid}`, binary);
  }
  return binary;
}

/** Whether a C compiler is on the PATH. */
export function haveCompiler(): boolean {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
