// Debian 11's packages unpacked into a folder: the C library and C++ runtime the prebuilds
// compile and link against (so they reference nothing newer), and the libraries their proof
// runs on. Debian 11 (glibc 2.31, GCC 10) is the oldest release whose packages are still
// served. The release file's signature is checked with the Debian keyring, and only what it
// signs is read: the packages index's SHA-256, which vouches for each package's.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const MIRROR = 'https://deb.debian.org/debian';
const RELEASE = 'bullseye';
export const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

async function download(url: string, sha256: string): Promise<Buffer> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const data = Buffer.from(await response.arrayBuffer());
  const actual = createHash('sha256').update(data).digest('hex');
  if (actual !== sha256) throw new Error(`${url}: SHA-256 ${actual}, expected ${sha256}`);
  return data;
}

/** The packages index of one architecture: name → [pool path, SHA-256, version]. */
async function packagesIndex(arch: string, cache: string): Promise<Map<string, [string, string, string]>> {
  const inRelease = join(cache, 'InRelease');
  const signed = join(cache, 'Release');
  const response = await fetch(`${MIRROR}/dists/${RELEASE}/InRelease`);
  if (!response.ok) throw new Error(`${RELEASE} InRelease: HTTP ${response.status}`);
  writeFileSync(inRelease, Buffer.from(await response.arrayBuffer()));
  // gpgv writes out only the text the signature covers: anything around it is not read.
  rmSync(signed, { force: true });
  execFileSync('gpgv', ['--keyring', KEYRING, '--output', signed, inRelease], { stdio: ['ignore', 'ignore', 'pipe'] });
  const release = readFileSync(signed, 'utf8');
  if (!new RegExp(`^Codename: ${RELEASE}$`, 'm').test(release)) throw new Error(`the signed release file is not ${RELEASE}'s`);
  const sums = release.split('\nSHA256:\n')[1] ?? '';
  const name = `main/binary-${arch}/Packages.xz`;
  const line = sums.split('\n').find((entry) => entry.trim().endsWith(` ${name}`));
  if (line === undefined) throw new Error(`${RELEASE} InRelease lists no ${name}`);
  const packed = await download(`${MIRROR}/dists/${RELEASE}/${name}`, line.trim().split(/\s+/)[0]);
  const text = execFileSync('xz', ['-dc'], { input: packed, maxBuffer: 1 << 30 }).toString();
  const index = new Map<string, [string, string, string]>();
  for (const stanza of text.split('\n\n')) {
    const field = (key: string) => new RegExp(`^${key}: (.*)$`, 'm').exec(stanza)?.[1];
    const pkg = field('Package');
    const file = field('Filename');
    const sha = field('SHA256');
    const version = field('Version');
    if (pkg && file && sha && version) index.set(pkg, [file, sha, version]);
  }
  return index;
}

/**
 * Unpacks Debian 11's `packages` for `arch` (a Debian architecture: amd64, arm64) into
 * `dir`, unless a previous call left the same set there. Absolute symbolic links are made to
 * point inside `dir`, so that nothing resolves to this machine's own libraries.
 */
export async function debianRoot(arch: string, packages: string[], dir: string): Promise<string> {
  const stamp = join(dir, '.packages');
  const wanted = [...packages].sort().join('\n');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').split('\n\n')[0] === wanted) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const index = await packagesIndex(arch, dir);
  const versions: string[] = [];
  for (const pkg of packages) {
    const entry = index.get(pkg);
    if (entry === undefined) throw new Error(`Debian ${RELEASE} ${arch} has no package ${pkg}`);
    const [file, sha, version] = entry;
    const deb = join(dir, `${pkg}.deb`);
    writeFileSync(deb, await download(`${MIRROR}/${file}`, sha));
    execFileSync('dpkg-deb', ['-x', deb, dir]);
    rmSync(deb);
    versions.push(`${pkg} ${version}`);
  }
  pointInside(dir, dir);
  writeFileSync(stamp, `${wanted}\n\n${versions.join('\n')}\n`);
  return dir;
}

function pointInside(root: string, dir: string): void {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) {
      const target = readlinkSync(path);
      if (target.startsWith('/')) {
        rmSync(path);
        symlinkSync(relative(dir, join(root, target)) || '.', path);
      }
    } else if (stat.isDirectory()) {
      pointInside(root, path);
    }
  }
}
