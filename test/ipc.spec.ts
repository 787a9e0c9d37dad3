// ftok, the constants and the package entry points.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import * as kernelIpc from '../lib';
import { constants, ftok } from '../lib';
import { packageRoot } from '../lib/native';
import { assertErrno, compileC } from './helpers';

const ftokC = `
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
int main(int argc, char **argv) {
  key_t key = ftok(argv[1], atoi(argv[2]));
  if (key == -1) { perror("ftok"); return 1; }
  printf("%d\\n", (int)key);
  return 0;
}
`;

describe('ftok', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kernel-ipc-ftok-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('returns the same number as C ftok, negative keys included', () => {
    const program = compileC(ftokC);
    const files = ['a', 'b', 'c'].map((name) => {
      const file = join(dir, name);
      writeFileSync(file, name);
      return file;
    });
    for (const file of [...files, dir, '/']) {
      for (const projId of [1, 'A'.charCodeAt(0), 127, 128, 255]) {
        const expected = Number(execFileSync(program, [file, String(projId)], { encoding: 'utf8' }));
        assert.equal(ftok(file, projId), expected, `${file} ${projId}`);
      }
    }
    // projId 255 sets the top byte: C's key_t is signed, and so is ours.
    assert.ok(ftok(files[0], 255) < 0);
  });

  it('reports a missing file like fs does, with the path', () => {
    const missing = join(dir, 'missing');
    assertErrno(() => ftok(missing, 1), 'ENOENT', 'ftok');
    assert.throws(() => ftok(missing, 1), {
      message: `ENOENT: no such file or directory, ftok '${missing}'`,
      errno: -2,
      path: missing,
    });
  });

  it('rejects bad arguments before the syscall', () => {
    assert.throws(() => ftok(1 as unknown as string, 1), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /"path"/ });
    assert.throws(() => ftok('/tmp\u0000x', 1), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /'path'/ });
    for (const projId of [0, 256, -1, 1.5, NaN, Infinity]) {
      assert.throws(() => ftok('/', projId), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /"projId"/ });
    }
    assert.throws(() => ftok('/', '1' as unknown as number), { name: 'TypeError', message: /"projId"/ });
  });
});

describe('constants', () => {
  it('match the C headers', () => {
    const names = Object.keys(constants);
    const program = compileC(`
#define _GNU_SOURCE
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/msg.h>
#include <sys/sem.h>
int main(void) {
${names.map((name) => `  printf("%s %d\\n", "${name}", (int)(${name}));`).join('\n')}
  return 0;
}
`);
    const fromC = Object.fromEntries(
      execFileSync(program, { encoding: 'utf8' }).trim().split('\n').map((line) => {
        const [name, value] = line.split(' ');
        return [name, Number(value)];
      }),
    );
    assert.deepEqual({ ...constants }, fromC);
  });

  it('are exported by name too', () => {
    for (const [name, value] of Object.entries(constants)) {
      assert.equal((kernelIpc as Record<string, unknown>)[name], value, name);
    }
    assert.ok(Object.isFrozen(constants));
  });
});

describe('package', () => {
  it('loads by name, and kernel-ipc/promises, with require() and with import', () => {
    const script = `
      const { ftok, shmget, constants } = require('kernel-ipc');
      const promises = require('kernel-ipc/promises');
      Promise.all([import('kernel-ipc'), import('kernel-ipc/promises')]).then(([esm, esmPromises]) => {
        const ok = esm.ftok === ftok && esm.shmget === shmget && esm.constants.IPC_CREAT === constants.IPC_CREAT
          && typeof esm.SharedMemory === 'function' && typeof esm.MessageQueue === 'function'
          && esmPromises.msgrcv === promises.msgrcv && typeof promises.msgsnd === 'function';
        process.stdout.write(String(ok));
      });`;
    const out = execFileSync(process.execPath, ['-e', script], { cwd: packageRoot, encoding: 'utf8' });
    assert.equal(out, 'true');
  });

  it('loads the prebuild when PREBUILDS_ONLY is set, else the local build', () => {
    const loaded = require('node-gyp-build').resolve(packageRoot) as string;
    const expected = process.env.PREBUILDS_ONLY ? 'prebuilds/linux-x64/' : 'build/Release/';
    assert.ok(relative(packageRoot, loaded).startsWith(expected), loaded);
  });
});
