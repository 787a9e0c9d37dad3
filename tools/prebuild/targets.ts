// What each prebuild is compiled against and what its binary may reference. The floor is
// Node 20's own: glibc 2.28 with GCC 8's libstdc++ (RHEL 8, Debian 10), and musl (Alpine),
// whose libstdc++ and libgcc_s Node itself loads; each for x64 and arm64.
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Target {
  /** prebuilds/linux-<arch>/kernel-ipc.napi.<libc>.node */
  arch: 'x64' | 'arm64';
  libc: 'glibc' | 'musl';
  debianArch: 'amd64' | 'arm64';
  /** GNU triple of the Debian packages' paths (the glibc one, for musl too). */
  triple: string;
  /** The prefix of this machine's compiler and binutils for the architecture ('' for its own). */
  toolPrefix: string;
  /** The shared libraries the binary may need, each with the newest symbol version it may ask for. */
  needs: Record<string, Record<string, string> | null>;
  /** Where, under the Debian root, the libraries the binary needs are found (first match). */
  libraryDirs: string[];
  /** CC, CXX and LDFLAGS for node-gyp, given Debian 11's files unpacked at `root`, in `work`. */
  toolchain(root: string, work: string): Record<string, string>;
}

/** The Debian 11 packages in every root: headers, and libraries to link against and to run on. */
export const DEBIAN_PACKAGES = [
  'libc6', 'libc6-dev', 'linux-libc-dev', 'libgcc-s1', 'libgcc-10-dev', 'libstdc++6', 'libstdc++-10-dev', 'musl', 'musl-dev',
];

// Newest versions present in glibc 2.28 and in GCC 8's libstdc++ and libgcc_s.
const GLIBC_228 = { GLIBC: '2.28' };
const GCC_8 = { GLIBCXX: '3.4.25', CXXABI: '1.3.11', GCC: '8.0.0' };

// GCC 10's libstdc++ was configured on glibc 2.31 and calls its pthread clock functions (2.30)
// from inline code (condition_variable::wait_until on the steady clock): glibc 2.28 has none.
const CONFIG_FOR_GLIBC_228 = `#include_next <bits/c++config.h>
#undef _GLIBCXX_USE_PTHREAD_COND_CLOCKWAIT
#undef _GLIBCXX_USE_PTHREAD_MUTEX_CLOCKLOCK
#undef _GLIBCXX_USE_PTHREAD_RWLOCK_CLOCKLOCK
`;

// GCC 10's headers as configured for glibc, used with musl's: they test glibc's version
// (musl does what glibc 2.27 and later do there) and name glibc's own locale type.
const CONFIG_FOR_MUSL = `#define __GLIBC_PREREQ(major, minor) 1
${CONFIG_FOR_GLIBC_228}`;
const LOCALE_FOR_MUSL = `#include <locale.h>
typedef locale_t __locale_t;
#include_next <bits/c++locale.h>
`;

function configShim(work: string, libc: Target['libc'] = 'glibc'): string {
  const dir = join(work, 'include');
  mkdirSync(join(dir, 'bits'), { recursive: true });
  writeFileSync(join(dir, 'bits', 'c++config.h'), libc === 'musl' ? CONFIG_FOR_MUSL : CONFIG_FOR_GLIBC_228);
  if (libc === 'musl') writeFileSync(join(dir, 'bits', 'c++locale.h'), LOCALE_FOR_MUSL);
  return dir;
}

function glibc(arch: Target['arch'], debianArch: Target['debianArch'], triple: string, prefix: string): Target {
  return {
    arch, libc: 'glibc', debianArch, triple, toolPrefix: prefix,
    needs: {
      'libc.so.6': GLIBC_228, 'libpthread.so.0': GLIBC_228, 'libdl.so.2': GLIBC_228,
      [arch === 'x64' ? 'ld-linux-x86-64.so.2' : 'ld-linux-aarch64.so.1']: GLIBC_228,
      'libstdc++.so.6': GCC_8, 'libgcc_s.so.1': GCC_8,
    },
    libraryDirs: [`lib/${triple}`, `usr/lib/${triple}`],
    toolchain(root, work) {
      const cxxHeaders = `-isystem ${root}/usr/include/c++/10 -isystem ${root}/usr/include/${triple}/c++/10`;
      return {
        CC: `${prefix}gcc --sysroot=${root}`,
        CXX: `${prefix}g++ --sysroot=${root} -nostdinc++ -isystem ${configShim(work)} ${cxxHeaders}`,
        // Before the compiler's own directories, which are not under the sysroot.
        LDFLAGS: `-L${root}/usr/lib/gcc/${triple}/10 -L${root}/usr/lib/${triple} -L${root}/lib/${triple}`,
      };
    },
  };
}

function musl(arch: Target['arch'], debianArch: Target['debianArch'], triple: string, prefix: string): Target {
  const muslTriple = triple.replace(/-gnu$/, '-musl');
  return {
    arch, libc: 'musl', debianArch, triple, toolPrefix: prefix,
    // musl has no symbol versions, and Alpine's libstdc++ none either (--disable-symvers):
    // these are what linking against Debian's gives, which musl's loader does not check.
    needs: { 'libc.so': null, 'libstdc++.so.6': GCC_8, 'libgcc_s.so.1': GCC_8 },
    libraryDirs: [`lib/${muslTriple}`, `usr/lib/${triple}`, `lib/${triple}`],
    toolchain(root, work) {
      // This machine's GCC (or cross GCC) with musl's headers and start files, GCC 10's C++
      // headers, and only the libraries an Alpine Node has loaded to link against.
      const link = join(work, 'lib');
      const kernel = join(work, 'kernel-include');
      mkdirSync(link, { recursive: true });
      mkdirSync(kernel, { recursive: true });
      symlinkSync(`${root}/usr/lib/${triple}/libstdc++.so.6`, join(link, 'libstdc++.so'));
      symlinkSync(`${root}/lib/${triple}/libgcc_s.so.1`, join(link, 'libgcc_s.so'));
      for (const [name, target] of [['linux', 'linux'], ['asm', `${triple}/asm`], ['asm-generic', 'asm-generic']]) {
        symlinkSync(`${root}/usr/include/${target}`, join(kernel, name));
      }
      const musl = `${root}/usr/lib/${muslTriple}`;
      const specs = join(work, 'musl.specs');
      writeFileSync(specs, [
        '*startfile:', `${musl}/crti.o crtbeginS.o%s`, '',
        '*endfile:', `crtendS.o%s ${musl}/crtn.o`, '',
        '*libgcc:', 'libgcc.a%s -lgcc_s', '',
        // GCC's own link options, less its library directories: without --eh-frame-hdr an
        // unwinder that finds tables through PT_GNU_EH_FRAME (musl's libgcc_s) cannot catch
        // the addon's exceptions.
        // (On arm64 also GCC's default workaround for the Cortex-A53 erratum 843419.)
        '*link:', `-nostdlib --eh-frame-hdr --build-id -z relro --hash-style=gnu${arch === 'arm64' ? ' --fix-cortex-a53-843419' : ''} %{shared:-shared} %{rdynamic:-export-dynamic}`, '', '',
      ].join('\n'));
      const gccInclude = execFileSync(`${prefix}gcc`, ['-print-file-name=include'], { encoding: 'utf8' }).trim();
      const includes = [
        configShim(work, 'musl'), `${root}/usr/include/c++/10`, `${root}/usr/include/${triple}/c++/10`, gccInclude,
        `${root}/usr/include/${muslTriple}`, kernel,
      ].map((dir) => `-isystem ${dir}`).join(' ');
      // GCC's arm64 atomics call helpers in its libgcc that ask glibc's __getauxval which CPU
      // this is; musl has no such symbol: inline ARMv8.0 atomics instead.
      const machine = arch === 'arm64' ? ' -mno-outline-atomics' : '';
      return {
        CC: `${prefix}gcc -specs=${specs} -nostdinc${machine} ${includes}`,
        CXX: `${prefix}g++ -specs=${specs} -nostdinc -nostdinc++${machine} ${includes}`,
        LDFLAGS: `-L${link} -L${root}/lib/${muslTriple} -L${musl}`,
      };
    },
  };
}

export const TARGETS: Target[] = [
  glibc('x64', 'amd64', 'x86_64-linux-gnu', ''),
  glibc('arm64', 'arm64', 'aarch64-linux-gnu', 'aarch64-linux-gnu-'),
  musl('x64', 'amd64', 'x86_64-linux-gnu', ''),
  musl('arm64', 'arm64', 'aarch64-linux-gnu', 'aarch64-linux-gnu-'),
];

export function prebuildPath(packageRoot: string, target: Target): string {
  return join(packageRoot, 'prebuilds', `linux-${target.arch}`, `kernel-ipc.napi.${target.libc}.node`);
}
