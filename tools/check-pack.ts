// npm pack's last step before packing (prepack): every prebuild the package promises is
// there, so a tarball never ships without one and silently compiles on users' machines.
// The package root is the argument, else the working directory.
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { prebuildPath, TARGETS } from './prebuild/targets';

const root = resolve(process.argv[2] ?? '.');
const missing = TARGETS.map((target) => prebuildPath(root, target)).filter((file) => !existsSync(file));
if (missing.length > 0) {
  console.error(`kernel-ipc: missing prebuilds (npm run prebuild makes them): ${missing.map((file) => relative(root, file)).join(', ')}`);
  process.exitCode = 1;
}
