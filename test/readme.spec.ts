// The README's examples, run as written: every ```js block is an ES module of its own, run by a
// Node process that imports this package by name. As root, each runs in an IPC namespace of its
// own, which must hold no IPC object when it is done: the examples clean up what they make. Root
// runs them without CAP_SYS_RESOURCE, as most users would (a queue then cannot grow past msgmnb).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../lib/native';
import { asRoot, privateIpcArgs } from './helpers';

interface Example {
  line: number;
  source: string;
}

function examples(): Example[] {
  const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');
  return [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((match) => ({
    line: readme.slice(0, match.index).split('\n').length,
    source: match[1],
  }));
}

// What /proc/sysvipc lists in the example's namespace once it has exited: headers only, if it
// left nothing behind.
const listObjects = 'node "$0" && cat /proc/sysvipc/shm /proc/sysvipc/msg /proc/sysvipc/sem';

describe('README examples', function () {
  this.timeout(30000);
  let dir: string;
  let ownNamespace = false;
  let asUser: string[] = [];
  before(() => {
    const dropResource = ['setpriv', '--bounding-set=-sys_resource', '--'];
    if (asRoot && spawnSync(dropResource[0], [...dropResource.slice(1), 'true']).status === 0) asUser = dropResource;
    dir = mkdtempSync(join(tmpdir(), 'kernel-ipc-readme-'));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(packageRoot, join(dir, 'node_modules', 'kernel-ipc'));
    ownNamespace = spawnSync('unshare', [...privateIpcArgs, 'true']).status === 0;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const found = examples();
  it('are there to run', () => {
    assert.ok(found.length >= 15, `only ${found.length} js blocks found`);
  });

  for (const { line, source } of found) {
    it(`README.md line ${line}: ${source.split('\n')[0].slice(0, 70)}`, async function () {
      const file = join(dir, `line-${line}.mjs`);
      writeFileSync(file, source);
      const [command, ...args] = [
        ...asUser,
        ...(ownNamespace ? ['unshare', ...privateIpcArgs, '--', 'sh', '-c', listObjects.replace('node', process.execPath)] : [process.execPath]),
        file,
      ];
      const { stdout, stderr, error } = await new Promise<{ stdout: string; stderr: string; error: Error | null }>((resolve) => {
        execFile(command, args, { cwd: dir, encoding: 'utf8', timeout: 20000 }, (failure, out, err) => {
          resolve({ stdout: out, stderr: err, error: failure });
        });
      });
      assert.equal(error, null, `the example at README.md line ${line} failed:\n${stderr}\n${stdout}`);
      if (!ownNamespace) return;
      const left = stdout.split('\n').filter((text) => /^\s+-?\d+\s+\d+\s/.test(text));
      assert.deepEqual(left, [], `the example at README.md line ${line} left IPC objects behind`);
    });
  }
});
