import * as fs from 'fs';
import * as path from 'path';

import { Pkcs11Error } from './errors';
import type { NativeBinding } from './native/pkcs11';

/** The package's own folder: lib/ in a checkout (ts-jest), dist/lib/ once compiled. */
function packageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'CMakeLists.txt'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(start, '..', '..');
  }
}

/**
 * The one loader of the native addon. node-gyp-build looks in prebuilds/<platform>-<arch>/
 * first, then build/Release (a local build).
 */
function loadBinding(): NativeBinding {
  const root = packageRoot(__dirname);
  let binding: NativeBinding;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const load = require('node-gyp-build') as (dir: string) => unknown;
    binding = load(root) as NativeBinding;
  } catch (cause) {
    const error = new Error(
      `pkcs11-napi: no native binary loads for ${process.platform}-${process.arch} (Node ${process.version}). ` +
        `Build one with \`npm run build:native\` (needs cmake and a C++17 compiler), ` +
        `or install a release that ships prebuilds/${process.platform}-${process.arch}/. ` +
        `Cause: ${(cause as Error).message}`,
    );
    (error as Error & { cause?: unknown }).cause = cause;
    throw error;
  }
  binding.setErrorClass(Pkcs11Error);
  return binding;
}

export const binding: NativeBinding = loadBinding();
