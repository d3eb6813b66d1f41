// Build and packaging configuration agrees with itself: the Node-API version CMake compiles for
// is the one package.json declares (cmake-js reads binary.napi_versions to build offline against
// node-api-headers; prebuildify --napi names the binary after it), and package.json's entry
// points name files that `npm run build:ts` produces (npm test runs it before jest) and that
// "files" publishes.
import { describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');

interface PackageJson {
  main?: string;
  types?: string;
  exports?: unknown;
  files?: string[];
  binary?: { napi_versions?: number[] };
  scripts?: Record<string, string>;
}

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as PackageJson;
const cmakeLists = fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8');

/** Every string target in an "exports" value (nested conditions, arrays). */
function exportTargets(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(exportTargets);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(exportTargets);
  return [];
}

/** package.json's entry points: main, types and every exports target. */
function entryPoints(): string[] {
  const all = [pkg.main, pkg.types, ...exportTargets(pkg.exports)].filter((p): p is string => typeof p === 'string');
  return [...new Set(all.map((p) => path.posix.normalize(p)))];
}

function tsconfigOutDir(): { rootDir: string; outDir: string } {
  // tsconfig.json is plain JSON here (no comments); tsconfig.build.json extends it.
  const base = JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')) as {
    compilerOptions: { rootDir?: string; outDir?: string };
  };
  return { rootDir: base.compilerOptions.rootDir ?? '.', outDir: base.compilerOptions.outDir ?? '.' };
}

describe('Node-API version', () => {
  test('CMakeLists.txt set(NAPI_VERSION N) equals package.json binary.napi_versions[0]', () => {
    const sets = [...cmakeLists.matchAll(/^\s*set\(\s*NAPI_VERSION\s+(\d+)\s*\)/gim)];
    expect(sets).toHaveLength(1);
    const cmakeVersion = Number(sets[0][1]);

    const versions = pkg.binary?.napi_versions;
    expect(Array.isArray(versions)).toBe(true);
    expect(versions!.length).toBeGreaterThan(0);
    expect(versions![0]).toBe(cmakeVersion);
    // The addon is built once, for this version: further entries would promise binaries that do not exist.
    expect(versions).toEqual([cmakeVersion]);
  });

  test('CMake passes NAPI_VERSION to the compiler', () => {
    expect(cmakeLists).toMatch(/target_compile_definitions\([^)]*NAPI_VERSION=\$\{NAPI_VERSION\}/);
  });
});

describe('package.json entry points', () => {
  test('main, types and exports are set', () => {
    expect(pkg.main).toEqual(expect.any(String));
    expect(pkg.types).toEqual(expect.any(String));
    expect(exportTargets(pkg.exports).length).toBeGreaterThan(0);
  });

  test.each(entryPoints())('%s exists (after npm run build:ts)', (entry) => {
    const file = path.join(ROOT, entry);
    expect({ entry, exists: fs.existsSync(file) && fs.statSync(file).isFile() }).toEqual({ entry, exists: true });
  });

  test.each(entryPoints().filter((e) => /\.(d\.ts|js)$/.test(e) && !e.endsWith('.json')))(
    '%s is compiled from a TypeScript source, not left over in dist/',
    (entry) => {
      const { rootDir, outDir } = tsconfigOutDir();
      const rel = path.posix.relative(path.posix.normalize(outDir), path.posix.normalize(entry));
      expect(rel.startsWith('..')).toBe(false);
      const source = path.join(ROOT, rootDir, rel.replace(/(\.d\.ts|\.js)$/, '.ts'));
      expect({ entry, source: path.relative(ROOT, source), exists: fs.existsSync(source) }).toEqual({
        entry,
        source: path.relative(ROOT, source),
        exists: true,
      });
    },
  );

  test('every entry point is published by "files", and build/ is not', () => {
    const files = (pkg.files ?? []).map((f) => path.posix.normalize(f).replace(/\/$/, ''));
    const published = (p: string): boolean =>
      p === 'package.json' || files.some((f) => p === f || p.startsWith(`${f}/`));
    expect(entryPoints().filter((p) => !published(path.posix.normalize(p).replace(/^\.\//, '')))).toEqual([]);
    expect(files).toEqual(expect.arrayContaining(['prebuilds', 'CMakeLists.txt', 'native']));
    expect(files.filter((f) => f === 'build' || f.startsWith('build/'))).toEqual([]);
  });
});

describe('prebuild scripts', () => {
  test('npm run prebuild drives prebuildify through the cmake-js adapter', () => {
    expect(pkg.scripts?.prebuild).toBe('node scripts/prebuild.js');
    expect(fs.existsSync(path.join(ROOT, 'scripts', 'prebuild.js'))).toBe(true);
    expect(fs.existsSync(path.join(ROOT, 'scripts', 'prebuild-cmake-adapter.js'))).toBe(true);
    // npm runs a "prebuild" script before any script named "build" (a pre-script hook), so
    // there is deliberately no "build" script: the full build is "build:all".
    expect(pkg.scripts?.build).toBeUndefined();
  });
});
