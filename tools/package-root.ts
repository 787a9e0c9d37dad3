// The package's folder, for the tools, without loading the addon (lib/native does): the
// prebuilds are made where no local build may exist.
import { join } from 'node:path';

export const packageRoot = join(__dirname, '..', '..');
