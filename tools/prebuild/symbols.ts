// What a prebuild asks of the system it loads on, read from its ELF dynamic section with
// readelf (which reads every architecture): the libraries it needs, the symbol versions it
// asks each of them for, and whether each symbol it imports is there in the target's own
// libraries. Anything newer than the target's floor, or not there, fails the build.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Target } from './targets';

function readelf(args: string[], file: string): string {
  return execFileSync('readelf', ['-W', ...args, file], { encoding: 'utf8', maxBuffer: 1 << 28 });
}

/** A numbered symbol version: GLIBC_2.17, GLIBCXX_3.4.21. */
const VERSION = /^([A-Z]+)_(\d+(?:\.\d+)*)$/;

function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Needed library → the symbol versions asked of it. */
function versionNeeds(file: string): Map<string, string[]> {
  const needs = new Map<string, string[]>();
  for (const line of readelf(['-d'], file).split('\n')) {
    const needed = /\(NEEDED\)\s+Shared library: \[(.+)\]/.exec(line);
    if (needed) needs.set(needed[1], []);
  }
  let current: string[] | undefined;
  for (const line of readelf(['-V'], file).split('\n')) {
    const fileLine = /File: (\S+)/.exec(line);
    if (fileLine) current = needs.get(fileLine[1]);
    const name = /Name: (\S+)/.exec(line);
    if (name && current) current.push(name[1]);
  }
  return needs;
}

/** The newest version the binary asks each library for, by prefix (GLIBC_2.17...): its floor. */
export function floor(file: string): string {
  const newest = new Map<string, string>();
  for (const versions of versionNeeds(file).values()) {
    for (const version of versions) {
      const [, prefix, number] = VERSION.exec(version) ?? [];
      const seen = prefix === undefined ? undefined : newest.get(prefix);
      if (prefix !== undefined && (seen === undefined || compareVersions(number, seen) > 0)) newest.set(prefix, number);
    }
  }
  return [...newest].map(([prefix, number]) => `${prefix}_${number}`).join(' ') || 'no symbol versions';
}

/** Dynamic symbols: [name, defined here, weak]. */
function dynamicSymbols(file: string): Array<[string, boolean, boolean]> {
  const symbols: Array<[string, boolean, boolean]> = [];
  for (const line of readelf(['--dyn-syms'], file).split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8 || !/^\d+:$/.test(fields[0])) continue;
    const [, , , type, bind, , ndx, name] = fields;
    if (type === 'SECTION' || type === 'FILE' || name === undefined) continue;
    symbols.push([name.replace(/@.*$/, ''), ndx !== 'UND', bind === 'WEAK']);
  }
  return symbols;
}

/**
 * Problems with `file` as a prebuild for `target`, whose libraries are under `root`, loaded by
 * `node` (whose Node-API it may import); none is a pass.
 */
export function checkSymbols(file: string, target: Target, root: string, node: string): string[] {
  const { libraryDirs } = target;
  const problems: string[] = [];
  // Unwinders find a library's tables through this header: without it, no exception the
  // addon throws can be caught.
  const headers = readelf(['-l'], file);
  if (!/^\s*GNU_EH_FRAME\s/m.test(headers)) problems.push('has no PT_GNU_EH_FRAME header (linked without --eh-frame-hdr)');
  // An executable stack is refused by glibc 2.41's dlopen.
  if (!/^\s*GNU_STACK\s.*\sRW\s/m.test(headers)) problems.push('has no PT_GNU_STACK header, or asks for an executable stack');
  const needs = versionNeeds(file);
  const provided = new Set<string>();
  for (const [library, versions] of needs) {
    if (!(library in target.needs)) {
      problems.push(`needs ${library}, which a ${target.libc} ${target.arch} system may not have`);
      continue;
    }
    const floor = target.needs[library];
    for (const version of versions) {
      const [, prefix, number] = VERSION.exec(version) ?? [];
      const newest = prefix === undefined ? undefined : floor?.[prefix];
      if (newest === undefined) problems.push(`asks ${library} for ${version}, which the target's ${library} may not have`);
      else if (compareVersions(number, newest) > 0) problems.push(`asks ${library} for ${version}, newer than ${prefix}_${newest}`);
    }
    const path = libraryDirs.map((dir) => join(root, dir, library)).find((candidate) => existsSync(candidate));
    if (path === undefined) problems.push(`needs ${library}, not found in ${libraryDirs.join(', ')}`);
    else for (const [name, defined] of dynamicSymbols(path)) if (defined) provided.add(name);
  }
  const nodeApi = new Set(dynamicSymbols(node).filter(([name, defined]) => defined && /^(napi|node_api)_/.test(name)).map(([name]) => name));
  for (const [name, defined, weak] of dynamicSymbols(file)) {
    // Weak imports may be missing by design (__gmon_start__, __cxa_finalize).
    if (defined || weak) continue;
    if (/^(napi|node_api)_/.test(name)) {
      if (!nodeApi.has(name)) problems.push(`imports ${name}, which Node ${process.version} does not export`);
    } else if (!provided.has(name)) {
      problems.push(`imports ${name}, which none of its libraries defines`);
    } else if (target.libc === 'musl' && name.includes('15__locale_struct')) {
      // Debian's libstdc++ uses glibc's locale model; Alpine's the generic one (another type).
      problems.push(`imports ${name}, which names glibc's locale type: Alpine's libstdc++ has no such function`);
    }
  }
  return problems;
}
