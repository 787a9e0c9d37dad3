// How to run Node on the system each prebuild targets, on this machine: Debian 11's glibc
// loader and libraries for x64, qemu-user with Debian 11's arm64 libraries for arm64, and
// for musl Bun's musl build (no musl Node is published on npm) under Debian 11's musl.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { NODE_RELEASES, nodeBinary, packagedBinary } from '../nodes';
import type { Target } from './targets';

/** A copy of `node` that loads with Debian 11's loader and libraries, and so do the processes it forks. */
export function oldGlibcNode(node: string, root: string, work: string): string {
  mkdirSync(work, { recursive: true });
  const copy = join(work, 'node');
  copyFileSync(node, copy);
  // DT_RPATH (not RUNPATH) also applies to the libraries' own dependencies.
  execFileSync('patchelf', [
    '--set-interpreter', join(root, 'lib64', 'ld-linux-x86-64.so.2'),
    '--force-rpath', '--set-rpath', `${root}/lib/x86_64-linux-gnu:${root}/usr/lib/x86_64-linux-gnu`, copy,
  ]);
  return copy;
}

/** The Bun release whose musl build runs the musl prebuild's smoke test. */
const BUN = '1.4.5';

// What Debian's libstdc++ and libgcc_s (built on glibc, standing in for Alpine's, built on
// musl) import from glibc and musl lacks, given musl's equivalents. Thread-local destructors
// registered with the C++ runtime do not run; the smoke test needs none.
const GLIBC_SHIM = `#include <locale.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <time.h>
unsigned long __getauxval(unsigned long type) { return getauxval(type); }
uint32_t arc4random(void) { uint32_t v = 0; getrandom(&v, sizeof v, 0); return v; }
size_t __strftime_l(char *s, size_t n, const char *f, const struct tm *tm, locale_t l) { return strftime_l(s, n, f, tm, l); }
int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso) { (void)dtor; (void)obj; (void)dso; return 0; }
char __libc_single_threaded = 0;
void __cpu_indicator_init(void) {}
struct { unsigned vendor, type, subtype, features[1]; } __cpu_model;
`;

/** The loaders' names of each architecture. */
const LOADERS = {
  x64: { glibc: 'ld-linux-x86-64.so.2', musl: 'ld-musl-x86_64.so.1', bun: '@oven/bun-linux-x64-musl' },
  arm64: { glibc: 'ld-linux-aarch64.so.1', musl: 'ld-musl-aarch64.so.1', bun: '@oven/bun-linux-aarch64-musl' },
};

/** qemu for arm64, which looks for every path the program opens (its loader, /lib...) under -L first. */
function emulator(target: Target, root: string): string[] {
  return target.arch === 'arm64' ? ['qemu-aarch64', '-L', root] : [];
}

/** Bun's musl build, on Debian 11's musl loader, with this machine's GCC 12 libstdc++ (Bun needs its symbols). */
function muslRuntime(target: Target, root: string, work: string): string[] {
  const names = LOADERS[target.arch];
  const libs = join(work, 'musl-runtime');
  mkdirSync(libs, { recursive: true });
  const { CC, LDFLAGS } = target.toolchain(root, join(work, 'musl-toolchain'));
  const cc = (args: string[]) => execFileSync('sh', ['-c', `${CC} ${LDFLAGS} -shared -fPIC ${args.join(' ')}`], { cwd: libs });
  writeFileSync(join(libs, 'shim.c'), GLIBC_SHIM);
  cc(['-O2', '-o', 'libglibc-shim.so', 'shim.c']);
  // Debian's libstdc++ names glibc's loader among what it needs; musl has no such file.
  writeFileSync(join(libs, 'empty.c'), '');
  cc(['-o', names.glibc, `-Wl,-soname,${names.glibc}`, 'empty.c']);
  const libstdcxx = execFileSync(`${target.toolPrefix}g++`, ['-print-file-name=libstdc++.so.6'], { encoding: 'utf8' }).trim();
  copyFileSync(libstdcxx, join(libs, 'libstdc++.so.6'));
  // GCC 10's libgcc_s finds unwind tables as Alpine's does (PT_GNU_EH_FRAME, through
  // dl_iterate_phdr); GCC 12's would ask glibc's _dl_find_object, which musl lacks.
  copyFileSync(join(root, 'lib', target.triple, 'libgcc_s.so.1'), join(libs, 'libgcc_s.so.1'));
  const bun = packagedBinary(names.bun, BUN, 'bun');
  return [...emulator(target, root), join(root, 'lib', names.musl), '--preload', join(libs, 'libglibc-shim.so'), '--library-path', libs, bun];
}

/** What runs Node (or Bun) for the target here, on the C library under `root`: its argv before the script. */
export function runtimeFor(target: Target, root: string, work: string): string[] {
  if (target.libc === 'musl') return muslRuntime(target, root, work);
  if (target.arch === 'x64') return [oldGlibcNode(process.execPath, root, work)];
  return [...emulator(target, root), nodeBinary(NODE_RELEASES[22], 'arm64')];
}
