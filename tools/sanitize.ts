// npm run test:sanitize [-- <spec files>]: the suite against the addon built with
// AddressSanitizer and UndefinedBehaviorSanitizer, in a copy of the package under
// build-sanitize/ (so the ordinary build stays as it is), with the sanitizers' runtime
// preloaded into Node and every process it starts. Any error they find ends that process.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../lib/package-root';

const copy = join(packageRoot, 'build-sanitize');
const NOT_COPIED = new Set(['node_modules', 'build', 'build-sanitize', 'build-prebuild', 'build-nodes', 'prebuilds', '.git', 'bench-results']);
const FLAGS = '-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g';

function runtime(library: string): string {
  return realpathSync(execFileSync('cc', [`-print-file-name=${library}`], { encoding: 'utf8' }).trim());
}

// The package afresh, but the compiled objects of the last run, which make rebuilds quick.
mkdirSync(copy, { recursive: true });
for (const entry of readdirSync(copy)) if (entry !== 'build') rmSync(join(copy, entry), { recursive: true, force: true });
for (const entry of readdirSync(packageRoot)) {
  if (!NOT_COPIED.has(entry)) cpSync(join(packageRoot, entry), join(copy, entry), { recursive: true });
}
symlinkSync(join(packageRoot, 'node_modules'), join(copy, 'node_modules'));

const bin = (name: string) => join(packageRoot, 'node_modules', '.bin', name);
execFileSync(bin('node-gyp'), ['configure', 'build', '-j', '2'], {
  cwd: copy,
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, CXXFLAGS: FLAGS, LDFLAGS: '-fsanitize=address,undefined' },
});

const { status, signal } = spawnSync(bin('mocha'), process.argv.slice(2), {
  cwd: copy,
  stdio: 'inherit',
  env: {
    ...process.env,
    // First in every process: Node itself is not built with them.
    LD_PRELOAD: [runtime('libasan.so'), runtime('libubsan.so'), process.env.LD_PRELOAD].filter(Boolean).join(':'),
    // Node and V8 keep memory until exit on purpose: leaks are not what this run looks for.
    ASAN_OPTIONS: 'detect_leaks=0',
    UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  },
});
process.exitCode = status ?? (signal === null ? 1 : 128);
