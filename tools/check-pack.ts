// npm pack's last step before packing (prepack): every prebuild the package promises is
// there, and is a shared object for its architecture, so a tarball never ships without one
// and silently compiles on users' machines. The package root is the argument, else the
// working directory.
import { existsSync, readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { prebuildPath, TARGETS } from './prebuild/targets';

// ELF e_machine values.
const MACHINES: Record<string, number> = { x64: 62, arm64: 183 };

const root = resolve(process.argv[2] ?? '.');
const problems: string[] = [];
for (const target of TARGETS) {
  const file = prebuildPath(root, target);
  const name = relative(root, file);
  if (!existsSync(file)) {
    problems.push(`${name} is missing`);
    continue;
  }
  const header = readFileSync(file).subarray(0, 20);
  const sharedObject = header.length === 20 && header.readUInt32BE(0) === 0x7f454c46 && header.readUInt16LE(16) === 3;
  if (!sharedObject || header.readUInt16LE(18) !== MACHINES[target.arch]) problems.push(`${name} is not a shared object for ${target.arch}`);
}
if (problems.length > 0) {
  console.error(`kernel-ipc: prebuilds (npm run prebuild makes them): ${problems.join('; ')}`);
  process.exitCode = 1;
}
