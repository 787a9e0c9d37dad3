// npm run prebuild: the binaries the package ships, for every target in targets.ts, built on
// this machine without containers: compiled against Debian 11's C library and C++ headers
// (unpacked under build-prebuild/), checked for what they ask of the system (a newer symbol
// version than the target's floor fails the build), then proven by the smoke test in each
// target's own runtime. Needs the tools the README lists (cross compiler, qemu-user, patchelf).
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { packageRoot } from '../../lib/package-root';
import { debianRoot, KEYRING } from './debian';
import { nodesDir } from '../nodes';
import { runtimeFor } from './runtimes';
import { checkSymbols, floor } from './symbols';
import { DEBIAN_PACKAGES, prebuildPath, TARGETS, type Target } from './targets';

export const work = join(packageRoot, 'build-prebuild');

export function rootFor(debianArch: string): Promise<string> {
  return debianRoot(debianArch, DEBIAN_PACKAGES, join(work, `debian-${debianArch}`));
}

function nameOf(target: Target): string {
  return `linux-${target.arch}-${target.libc}`;
}

function build(target: Target, root: string): string {
  const dir = join(work, nameOf(target));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(packageRoot, 'binding.gyp'), join(dir, 'binding.gyp'));
  symlinkSync(join(packageRoot, 'src'), join(dir, 'src'));
  symlinkSync(join(packageRoot, 'node_modules'), join(dir, 'node_modules'));
  const nodedir = process.env.npm_config_nodedir;
  execFileSync(join(packageRoot, 'node_modules', '.bin', 'node-gyp'), [
    'rebuild', `--arch=${target.arch}`, '-j', '2', ...(nodedir ? [`--nodedir=${nodedir}`] : []),
  ], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...target.toolchain(root, dir) } });
  const file = prebuildPath(packageRoot, target);
  mkdirSync(dirname(file), { recursive: true });
  execFileSync(`${target.toolPrefix}strip`, ['--strip-unneeded', '-o', file, join(dir, 'build', 'Release', 'kernel_ipc.node')]);
  return file;
}

/** The package as npm installs it, with only its prebuilds to load, and the smoke test beside it. */
function installCopy(dir: string): string {
  const app = join(dir, 'app');
  rmSync(app, { recursive: true, force: true });
  const installed = join(app, 'node_modules', 'kernel-ipc');
  for (const path of ['package.json', 'dist/lib', 'prebuilds']) {
    cpSync(join(packageRoot, path), join(installed, path), { recursive: true });
  }
  cpSync(join(packageRoot, 'node_modules', 'node-gyp-build'), join(app, 'node_modules', 'node-gyp-build'), { recursive: true });
  copyFileSync(join(packageRoot, 'dist', 'tools', 'prebuild', 'smoke.js'), join(app, 'smoke.js'));
  // A package of its own: inside this one's folder, 'kernel-ipc' would name this package itself.
  writeFileSync(join(app, 'package.json'), '{ "name": "kernel-ipc-smoke", "private": true }\n');
  return app;
}

function prove(target: Target, root: string): string {
  const dir = join(work, nameOf(target));
  const runtime = runtimeFor(target, root, dir);
  const app = installCopy(dir);
  const env = { ...process.env };
  delete env.PREBUILDS_ONLY;
  // In an IPC namespace of its own (inside a user namespace when not root): whatever a failed
  // or killed run leaves goes with it.
  const unshare = process.getuid?.() === 0 ? ['--ipc'] : ['--user', '--map-root-user', '--ipc'];
  const run = spawnSync('unshare', [...unshare, '--', ...runtime, 'smoke.js'], {
    cwd: app, env, encoding: 'utf8', timeout: 300_000,
  });
  const output = `${run.stdout}${run.stderr}`;
  const line = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(output)?.[1] ?? '';
  const expected = join(app, 'node_modules', 'kernel-ipc', relative(packageRoot, prebuildPath(packageRoot, target)));
  const problems = [
    run.status === 0 && /^smoke: ok$/m.test(output) ? '' : `the smoke test failed (${run.error?.message ?? `status ${run.status}`})`,
    line('addon').endsWith(expected) ? '' : `loaded ${line('addon') || 'no addon'}, not ${expected}`,
    line('libc').startsWith(`${root}/`) ? '' : `ran on the C library ${line('libc') || '(none)'}, not one under ${root}`,
    // Nothing from this machine's own libraries: only Debian 11's, and what was put in place here.
    ...line('libraries').split(' ').filter((path) => path !== '' && ![root, dir, nodesDir].some((inside) => path.startsWith(`${inside}/`)))
      .map((path) => `loaded ${path}, from outside what the target's runtime is made of`),
  ].filter(Boolean);
  if (problems.length > 0) throw new Error(`${nameOf(target)}: ${problems.join('; ')}\n${output}`);
  return `${line('runtime')}, ${line('libc').slice(root.length)}`;
}

/** The programs this needs that a machine may lack, with the Debian packages that have them. */
const TOOLS: Array<[string, string]> = [
  ['aarch64-linux-gnu-g++', 'g++-aarch64-linux-gnu'], ['aarch64-linux-gnu-strip', 'binutils-aarch64-linux-gnu'],
  ['qemu-aarch64', 'qemu-user'], ['patchelf', 'patchelf'], ['gpgv', 'gpgv'], ['xz', 'xz-utils'], ['g++', 'g++'],
  ['dpkg-deb', 'dpkg'], ['readelf', 'binutils'],
];

function checkTools(): void {
  // The x64 binaries come from this machine's own compiler.
  if (process.arch !== 'x64') throw new Error(`npm run prebuild runs on an x64 machine, not ${process.arch}`);
  if (!existsSync(KEYRING)) throw new Error(`npm run prebuild checks Debian's packages with ${KEYRING}: apt-get install debian-archive-keyring`);
  const missing = TOOLS.filter(([command]) => spawnSync('sh', ['-c', `command -v ${command}`]).status !== 0);
  if (missing.length === 0) return;
  throw new Error(`npm run prebuild needs ${missing.map(([command]) => command).join(', ')}: on Debian or Ubuntu, apt-get install ${missing.map(([, pkg]) => pkg).join(' ')}`);
}

async function main(): Promise<void> {
  checkTools();
  rmSync(join(packageRoot, 'prebuilds'), { recursive: true, force: true });
  const roots = new Map<string, string>();
  for (const target of TARGETS) {
    if (!roots.has(target.debianArch)) {
      console.log(`Debian 11 ${target.debianArch} packages...`);
      roots.set(target.debianArch, await rootFor(target.debianArch));
    }
  }
  const failures: string[] = [];
  for (const target of TARGETS) {
    const root = roots.get(target.debianArch) ?? '';
    const file = build(target, root);
    // Node-API checked against the Node this runs on: CI's is Node 20, the oldest supported.
    const problems = checkSymbols(file, target, root, process.execPath);
    console.log(`${relative(packageRoot, file)}: ${floor(file)}${problems.length ? '' : ', every import found in its libraries'}`);
    failures.push(...problems.map((problem) => `${nameOf(target)} ${problem}`));
  }
  if (failures.length > 0) throw new Error(`the prebuilds ask too much of the systems they target:\n  ${failures.join('\n  ')}`);
  for (const target of TARGETS) {
    console.log(`${nameOf(target)} smoke test: ${prove(target, roots.get(target.debianArch) ?? '')}: ok`);
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
