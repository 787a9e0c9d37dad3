// The package's folder, without loading the addon (lib/native does): the tools use it where
// no binary may exist yet.
import { join } from 'node:path';

export const packageRoot = join(__dirname, '..', '..');
