// The package as npm publishes it: what the tarball holds, what runs when it installs, and that
// npm pack refuses to make one without every prebuild.
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { packageRoot } from '../lib/native';
import { prebuildPath, type Target, TARGETS } from '../tools/prebuild/targets';

const manifest = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8'));

describe('the published package', function () {
  this.timeout(60000);
  let files: string[];
  before(() => {
    // --ignore-scripts: what the tarball would hold, whether or not prebuilds were made here.
    const [report] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: packageRoot, encoding: 'utf8' }));
    files = report.files.map((file: { path: string }) => file.path);
  });

  it('holds the library, its sources to build from, its license and changelog, and nothing of the tests or tools', () => {
    for (const file of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'binding.gyp', 'src/addon.cc', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/promises.js']) {
      assert.ok(files.includes(file), `${file} is missing`);
    }
    assert.deepEqual(files.filter((file) => /^(test|tools|bench|examples|dist\/(test|tools|bench|examples))\//.test(file)), []);
  });

  it('ships source maps that resolve: each carries the TypeScript it maps', () => {
    const maps = files.filter((file) => file.endsWith('.js.map'));
    assert.ok(maps.length >= 10, `${maps.length} source maps`);
    for (const file of maps) {
      const map = JSON.parse(readFileSync(join(packageRoot, file), 'utf8'));
      assert.equal(map.sources.length, map.sourcesContent?.length, `${file} carries no sources`);
      assert.ok(map.sourcesContent.every((source: unknown) => typeof source === 'string' && source.length > 0), file);
    }
  });

  it('runs nothing when installed but node-gyp-build, which builds only when no prebuild loads', () => {
    const installTime = ['preinstall', 'install', 'postinstall', 'prepare'].filter((name) => name in manifest.scripts);
    assert.deepEqual(installTime.map((name) => [name, manifest.scripts[name]]), [['install', 'node-gyp-build']]);
  });

  it('has no script that npm would run as another\'s pre-hook by accident (a build script would run prebuild)', () => {
    const hooks = Object.keys(manifest.scripts).filter((name) => name.startsWith('pre') && name.slice(3) in manifest.scripts);
    assert.deepEqual(hooks.sort(), ['prebench', 'predemo', 'preprebuild', 'pretest', 'pretest:sanitize']);
  });

  it('has node-gyp-build check a prebuild at install through kernel-ipc\'s own loader, which tells musl from glibc', () => {
    assert.equal(manifest.prebuild.test, 'dist/lib/native.js');
    assert.ok(files.includes(manifest.prebuild.test));
  });

  it('says, where no binary was built or prebuilt, how to build one, which npm 11 does not do unasked', () => {
    const copy = mkdtempSync(join(tmpdir(), 'kernel-ipc-nobinary-'));
    try {
      cpSync(join(packageRoot, 'package.json'), join(copy, 'package.json'));
      cpSync(join(packageRoot, 'dist', 'lib'), join(copy, 'dist', 'lib'), { recursive: true });
      symlinkSync(join(packageRoot, 'node_modules'), join(copy, 'node_modules'));
      const { status, stderr } = spawnSync(process.execPath, ['-e', 'require(".")'], { cwd: copy, encoding: 'utf8' });
      assert.equal(status, 1);
      assert.match(stderr, /No native build was found for platform=linux/);
      assert.match(stderr, /build it from source \(with python3, make and g\+\+\), allow its install script and run it: npm install-scripts approve kernel-ipc && npm rebuild kernel-ipc/);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('says, when bundled away from its binaries, to leave it out of the bundle', () => {
    const app = mkdtempSync(join(tmpdir(), 'kernel-ipc-bundled-'));
    try {
      writeFileSync(join(app, 'package.json'), '{ "name": "app" }');
      cpSync(join(packageRoot, 'dist', 'lib'), join(app, 'dist', 'lib'), { recursive: true });
      symlinkSync(join(packageRoot, 'node_modules'), join(app, 'node_modules'));
      const { status, stderr } = spawnSync(process.execPath, ['-e', 'require("./dist/lib")'], { cwd: app, encoding: 'utf8' });
      assert.equal(status, 1);
      assert.match(stderr, /kernel-ipc was bundled, away from its binaries: mark it external/);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });

  it('says where it lives and what it is, and takes dependencies by ranges that deduplicate', () => {
    assert.equal(manifest.license, 'MIT');
    assert.match(manifest.repository.url, /^git\+https:\/\//);
    assert.ok(manifest.homepage && manifest.bugs.url && manifest.keywords.length > 5);
    for (const [name, range] of Object.entries<string>(manifest.dependencies)) assert.match(range, /^\^\d/, name);
  });

  describe('npm pack', () => {
    let root: string;
    beforeEach(() => {
      root = mkdtempSync(join(tmpdir(), 'kernel-ipc-pack-'));
    });
    afterEach(() => rmSync(root, { recursive: true, force: true }));

    function checkPack(): { status: number | null; stderr: string } {
      return spawnSync(process.execPath, [join(packageRoot, 'dist', 'tools', 'check-pack.js'), root], { encoding: 'utf8' });
    }

    /** The start of an ELF shared object (64-bit, little-endian) for `machine`: what the check reads. */
    function place(target: Target, machine = target.arch === 'x64' ? 62 : 183): void {
      const header = Buffer.alloc(64);
      header.writeUInt32BE(0x7f454c46, 0);
      header.set([2, 1, 1], 4);
      header.writeUInt16LE(3, 16);
      header.writeUInt16LE(machine, 18);
      mkdirSync(dirname(prebuildPath(root, target)), { recursive: true });
      writeFileSync(prebuildPath(root, target), header);
    }

    it('fails without every prebuild, or with one for the wrong machine, naming them', () => {
      assert.match(manifest.scripts.prepack, /node dist\/tools\/check-pack\.js$/);
      const [x64, arm64, ...musl] = TARGETS;
      place(arm64, 62);
      musl.forEach((target) => place(target));
      const { status, stderr } = checkPack();
      assert.equal(status, 1);
      assert.match(stderr, /^kernel-ipc: prebuilds \(npm run prebuild makes them\): prebuilds\/linux-x64\/kernel-ipc\.napi\.glibc\.node is missing; prebuilds\/linux-arm64\/kernel-ipc\.napi\.glibc\.node is not a shared object for arm64$/m);
      place(x64);
      place(arm64);
      assert.equal(checkPack().status, 0);
    });

    it('expects x64 and arm64, for glibc and for musl', () => {
      assert.deepEqual(TARGETS.map((target) => `${target.arch} ${target.libc}`), ['x64 glibc', 'arm64 glibc', 'x64 musl', 'arm64 musl']);
    });
  });
});
