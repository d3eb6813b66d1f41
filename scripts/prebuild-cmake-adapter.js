#!/usr/bin/env node
'use strict';

/**
 * A stand-in for node-gyp that prebuildify can drive: it builds this package with cmake-js.
 *
 * prebuildify (v6, index.js `build()`) runs, in the package directory,
 *
 *   $PREBUILD_NODE_GYP rebuild --target=<version> --devdir=<tmp>/prebuildify/<runtime>
 *                      --arch=<arch> [--runtime=electron --dist-url=<url>]
 *                      [--build_v8_with_gn=false] --release|--debug
 *
 * and then takes the first `*.node` file in build/Release (build/Debug with --debug), strips it
 * and renames it to prebuilds/<platform>-<arch>/<name>[.<libc>].node. This script maps those
 * arguments onto `cmake-js rebuild` (same arch, runtime and configuration) so the binary lands
 * exactly there.
 *
 * The build is offline: package.json declares `binary.napi_versions`, so cmake-js compiles
 * against the node-api-headers package (a cmake-js dependency) and never downloads Node or
 * Electron headers; `--target`, `--devdir` and `--dist-url` are therefore not needed. This
 * script refuses to run if `binary.napi_versions` is missing, rather than let cmake-js go
 * online for a per-ABI build.
 *
 * Spawned without a shell on Linux/macOS (prebuildify's default), so this file must be
 * executable; scripts/prebuild.js ensures that. On Windows prebuildify uses a shell and
 * scripts/prebuild.js passes `"<node.exe>" "<this file>"` instead.
 */

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const LOG = 'prebuild-cmake-adapter:';

function fail(message) {
  console.error(`${LOG} ${message}`);
  process.exit(1);
}

/** node-gyp style argv → { command, options } ("--k=v", "--k v" is not used by prebuildify). */
function parseArgs(argv) {
  let command = null;
  const options = {};
  const ignored = [];
  for (const arg of argv) {
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const key = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      options[key] = eq === -1 ? true : arg.slice(eq + 1);
    } else if (command === null) {
      command = arg;
    } else {
      // e.g. a --devdir path with spaces split by the Windows shell; nothing we use.
      ignored.push(arg);
    }
  }
  return { command, options, ignored };
}

function main() {
  const { command, options, ignored } = parseArgs(process.argv.slice(2));
  if (command !== 'rebuild' && command !== 'build') {
    fail(`unsupported command '${command}' (prebuildify runs 'rebuild'); args: ${process.argv.slice(2).join(' ')}`);
  }
  if (ignored.length) console.error(`${LOG} ignoring extra arguments: ${ignored.join(' ')}`);

  const root = process.cwd(); // prebuildify runs us in the package directory (opts.cwd)
  const pkgPath = path.join(root, 'package.json');
  let pkg;
  try {
    pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
  } catch (err) {
    fail(`cannot read ${pkgPath}: ${err.message}`);
  }
  const napiVersions = pkg.binary && pkg.binary.napi_versions;
  if (!Array.isArray(napiVersions) || napiVersions.length === 0) {
    fail(`${pkgPath} has no binary.napi_versions; cmake-js would download Node headers instead of building offline against node-api-headers.`);
  }
  if (!fs.existsSync(path.join(root, 'CMakeLists.txt'))) fail(`no CMakeLists.txt in ${root}`);

  const debug = options.debug === true || options.debug === 'true';
  const config = debug ? 'Debug' : 'Release';
  const runtime = typeof options.runtime === 'string' ? options.runtime : 'node';

  let cmakeJs;
  try {
    cmakeJs = createRequire(pkgPath).resolve('cmake-js/bin/cmake-js');
  } catch (err) {
    fail(`cmake-js is not installed in ${root} (it is a dependency of this package): ${err.message}`);
  }

  const args = [cmakeJs, command, '--directory', root, '--runtime', runtime];
  // --target (the Node/Electron version) is deliberately not passed on: a Node-API binary does
  // not depend on it, and cmake-js only uses it to pick headers to download.
  if (typeof options.arch === 'string') args.push('--arch', options.arch);
  args.push('--config', config);
  if (debug) args.push('--debug');
  if (typeof options.jobs === 'string') args.push('--parallel', options.jobs === 'max' ? String(require('os').cpus().length) : options.jobs);

  console.error(`${LOG} ${path.basename(process.execPath)} ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: process.env, windowsHide: true });
  if (result.error) fail(`could not run cmake-js: ${result.error.message}`);
  if (result.status !== 0) fail(`cmake-js ${command} failed (${result.signal ? `signal ${result.signal}` : `exit status ${result.status}`})`);

  // prebuildify looks for the addon in build/<Config>/; make sure it is there.
  const outDir = path.join(root, 'build', config);
  const inOutDir = fs.existsSync(outDir) ? fs.readdirSync(outDir).filter((f) => /\.node$/i.test(f)) : [];
  if (inOutDir.length === 0) {
    const found = findNodeFiles(path.join(root, 'build'));
    if (found.length === 0) fail(`cmake-js succeeded but produced no .node file under ${path.join(root, 'build')}`);
    fs.mkdirSync(outDir, { recursive: true });
    fs.copyFileSync(found[0], path.join(outDir, path.basename(found[0])));
    console.error(`${LOG} copied ${found[0]} to ${outDir}`);
  } else if (inOutDir.length > 1) {
    fail(`more than one .node file in ${outDir} (${inOutDir.join(', ')}); prebuildify would pick one arbitrarily`);
  }
}

function findNodeFiles(dir) {
  const out = [];
  let entries = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'CMakeFiles') out.push(...findNodeFiles(p));
    else if (e.isFile() && /\.node$/i.test(e.name)) out.push(p);
  }
  return out;
}

main();
