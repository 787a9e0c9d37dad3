// Node binaries of other versions and architectures, from the npm registry (the official
// builds, republished as node-linux-<arch> packages), unpacked once under build-nodes/;
// and other runtimes published the same way.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../lib/package-root';

/** The releases the suite runs on besides the one running it (Node 20's last on npm is older than our floor). */
export const NODE_RELEASES: Record<string, string> = { 22: '22.23.5', 24: '24.22.3' };

/** Where they are unpacked. */
export const nodesDir = join(packageRoot, 'build-nodes');

/** The path of `bin/node` of Node `version` for `arch` (x64, arm64). */
export function nodeBinary(version: string, arch: string = process.arch): string {
  return packagedBinary(`node-linux-${arch}`, version, 'node');
}

/** The path of `bin/<name>` in the npm package `pkg` at `version`. */
export function packagedBinary(pkg: string, version: string, name: string): string {
  const dir = join(nodesDir, `${pkg.replace('/', '+')}-${version}`);
  const binary = join(dir, 'bin', name);
  if (existsSync(binary)) return binary;
  const partial = `${dir}.${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  // npm pack checks the tarball against the registry's integrity hash.
  execFileSync('npm', ['pack', '--silent', `${pkg}@${version}`], { cwd: partial, stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = readdirSync(partial).find((name) => name.endsWith('.tgz'));
  if (tarball === undefined) throw new Error(`npm pack ${pkg}@${version} gave no tarball`);
  execFileSync('tar', ['-xzf', tarball, '--strip-components=1'], { cwd: partial });
  rmSync(join(partial, tarball));
  renameSync(partial, dir);
  return binary;
}

// npm run test:nodes [-- <mocha arguments>]: the suite on each release above, one after the other.
if (require.main === module) {
  for (const [major, version] of Object.entries(NODE_RELEASES)) {
    const node = nodeBinary(version);
    console.log(`\nThe suite on Node ${version} (${node})`);
    const { status, signal } = spawnSync(node, [join(packageRoot, 'node_modules', '.bin', 'mocha'), ...process.argv.slice(2)], {
      cwd: packageRoot, stdio: 'inherit',
    });
    if (status !== 0) {
      console.error(`The suite failed on Node ${major} (${signal ?? `status ${status}`})`);
      process.exit(status ?? 1);
    }
  }
}
