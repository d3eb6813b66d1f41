#!/usr/bin/env node
'use strict';

/**
 * `npm run prebuild`: build prebuilds/<platform>-<arch>/pkcs11-napi[.<libc>].node for this
 * machine with prebuildify, using cmake-js (scripts/prebuild-cmake-adapter.js) instead of
 * node-gyp. Cross-platform replacement for
 *
 *   PREBUILD_NODE_GYP=scripts/prebuild-cmake-adapter.js prebuildify --napi --strip [--tag-libc]
 *
 * - --napi: one Node-API binary serves every Node version (NAPI_VERSION in CMakeLists.txt).
 * - --strip: prebuildify strips the binary on Linux and macOS (needs `strip`).
 * - --tag-libc on Linux only: pkcs11-napi.glibc.node / pkcs11-napi.musl.node can sit side by
 *   side in prebuilds/linux-x64/; node-gyp-build picks the one matching the running libc.
 *   macOS and Windows have a single libc, so their file is plain pkcs11-napi.node.
 *
 * Extra arguments are passed on to prebuildify (e.g. --arch=arm64, --debug).
 */

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const root = path.resolve(__dirname, '..');
const adapter = path.join(__dirname, 'prebuild-cmake-adapter.js');

let nodeGyp;
if (process.platform === 'win32') {
  // prebuildify spawns node-gyp through cmd.exe on Windows: a quoted command line works there.
  nodeGyp = `"${process.execPath}" "${adapter}"`;
} else {
  // prebuildify spawns node-gyp without a shell here: the adapter must be an executable file.
  const mode = fs.statSync(adapter).mode;
  if ((mode & 0o111) !== 0o111) fs.chmodSync(adapter, mode | 0o755);
  nodeGyp = adapter;
}

let prebuildifyBin;
try {
  prebuildifyBin = createRequire(path.join(root, 'package.json')).resolve('prebuildify/bin.js');
} catch (err) {
  console.error(`prebuild: prebuildify is not installed (it is a devDependency; run npm install): ${err.message}`);
  process.exit(1);
}

const args = [prebuildifyBin, '--napi', '--strip'];
if (process.platform === 'linux') args.push('--tag-libc');
args.push(...process.argv.slice(2));

const result = spawnSync(process.execPath, args, {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, PREBUILD_NODE_GYP: nodeGyp },
  windowsHide: true,
});
if (result.error) {
  console.error(`prebuild: could not run prebuildify: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status === null ? 1 : result.status);
