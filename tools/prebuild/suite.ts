// The whole suite against the x64 glibc prebuild (PREBUILDS_ONLY), in Node loaded by Debian
// 11's glibc 2.31 and GCC 10's libstdc++ instead of this machine's: every Node process the
// suite starts is that one. Run by npm test after npm run prebuild.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../lib/package-root';
import { rootFor, work } from './index';
import { oldGlibcNode } from './runtimes';

async function main(): Promise<void> {
  const node = oldGlibcNode(process.execPath, await rootFor('amd64'), join(work, 'suite'));
  console.log(`The suite on the x64 glibc prebuild, in Node ${process.version} on Debian 11's glibc and libstdc++ (${node})`);
  const { status, signal } = spawnSync(node, [join(packageRoot, 'node_modules', '.bin', 'mocha'), ...process.argv.slice(2)], {
    cwd: packageRoot, stdio: 'inherit', env: { ...process.env, PREBUILDS_ONLY: '1' },
  });
  process.exitCode = status ?? (signal === null ? 1 : 128);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
