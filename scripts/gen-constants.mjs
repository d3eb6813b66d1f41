#!/usr/bin/env node
// Generates the PKCS#11 constant tables for C++ and TypeScript from constants/pkcs11.txt, the
// single source of truth. The constants are split into parts by group (PARTS below), one file
// per part, so that each file holds one kind of constant:
//   native/generated/<part>.h      constexpr constants of the part in namespace ck
//   native/generated/constants.h   includes the parts; the kind enums and lookup declarations
//   native/generated/names.cc      name lookups (RvName, AttributeName, MechanismName) as switches
//   native/generated/kinds.cc      attribute value kinds and mechanism parameter kinds as switches
//   lib/generated/<part>.ts        exported constants of the part
//   lib/generated/<part>-tables.ts the part's name maps (and kind maps), where it has any
//   lib/generated/constants.ts     re-exports every part: the one import path
//
// Usage: node scripts/gen-constants.mjs           write the files (only those that changed)
//        node scripts/gen-constants.mjs --check   exit 1 if any generated file is out of date
//
// No dependencies: plain Node (>= 18) ESM. Output is deterministic (data-file order, no dates).

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = 'constants/pkcs11.txt';
const NATIVE_DIR = 'native/generated';
const TS_DIR = 'lib/generated';

// The parts: which groups each file holds (every group in the data file must be in one).
const PARTS = [
  { file: 'return-values', groups: ['CKR'], what: 'return values (CK_RV)' },
  { file: 'attributes', groups: ['CKA'], what: 'attribute types (CK_ATTRIBUTE_TYPE)' },
  { file: 'objects', groups: ['CKO', 'CKH', 'CKK', 'CKC', 'CK'], what: 'object classes, hardware features, key and certificate types' },
  { file: 'mechanisms', groups: ['CKM'], what: 'mechanism types (CK_MECHANISM_TYPE)' },
  { file: 'flags', groups: ['CKF'], what: 'flags (CK_FLAGS fields)' },
  { file: 'enums', groups: ['CKU', 'CKS', 'CKN', 'CKG', 'CKZ', 'CKD', 'CKP'], what: 'user types, session states and the small enumerations of mechanism parameters' },
];

// Attribute value kinds, in the order of the C++ enum AttrKind (after Unknown).
const ATTR_KINDS = {
  bool: 'Bool',
  ulong: 'Ulong',
  bytes: 'Bytes',
  string: 'String',
  date: 'Date',
  template: 'Template',
  mechanisms: 'Mechanisms',
};
// Mechanism parameter kinds, in the order of the C++ enum ParamKind (after Raw).
const PARAM_KINDS = {
  pss: 'Pss',
  oaep: 'Oaep',
  ecdh1: 'Ecdh1',
  gcm: 'Gcm',
  ctr: 'Ctr',
  eddsa: 'EdDsa',
  iv: 'Iv',
  ulong: 'Ulong',
};
const CKF_ARRAY_ATTRIBUTE = 0x40000000;
// Platform-dependent or not constants of the standard's enumerations: the code handles them.
const FORBIDDEN = new Set(['CK_UNAVAILABLE_INFORMATION', 'CK_INVALID_HANDLE', 'CK_EFFECTIVELY_INFINITE']);
// Groups that get name lookup maps in TypeScript.
const TS_NAME_GROUPS = ['CKR', 'CKA', 'CKM', 'CKO', 'CKK'];

const hex8 = (value) => '0x' + value.toString(16).toUpperCase().padStart(8, '0');

/** Parses and validates the data file; returns { constants } or exits with status 1. */
function parse(text) {
  const errors = [];
  const constants = [];
  const byName = new Map();
  const firstByGroupValue = new Map(); // `${group}:${value}` -> constant
  let section = '';
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const fail = (message) => errors.push(`${SOURCE}:${line}: ${message}`);
    const hash = raw.indexOf('#');
    if (hash >= 0) {
      const heading = /^#\s*(CK[A-Z]?_[A-Z0-9_]*:\s.*)$/.exec(raw.slice(hash).trim());
      if (heading && raw.slice(0, hash).trim() === '') section = heading[1].trim();
    }
    const content = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (content === '') return;
    const fields = content.split(/\s+/);
    if (fields.length < 2 || fields.length > 3) {
      fail(`expected "NAME VALUE [KIND]", got "${content}"`);
      return;
    }
    const [name, valueText, kind] = fields;
    const groupMatch = /^(CK[A-Z]?)_[A-Z0-9_]+$/.exec(name);
    if (!groupMatch) {
      fail(`bad constant name "${name}" (expected CK?_UPPER_CASE)`);
      return;
    }
    if (FORBIDDEN.has(name)) {
      fail(`${name} is platform-dependent and handled in code: do not list it`);
      return;
    }
    const group = groupMatch[1];
    if (!/^0x[0-9A-Fa-f]{1,8}$/.test(valueText)) {
      fail(`bad value "${valueText}" for ${name}: expected hexadecimal 0x... of at most 32 bits`);
      return;
    }
    const value = Number.parseInt(valueText.slice(2), 16);
    if (group === 'CKA') {
      if (kind === undefined) {
        fail(`${name} has no kind: every CKA_ line needs one of ${Object.keys(ATTR_KINDS).join(', ')}`);
        return;
      }
      if (!Object.hasOwn(ATTR_KINDS, kind)) {
        fail(`bad attribute kind "${kind}" for ${name}: expected one of ${Object.keys(ATTR_KINDS).join(', ')}`);
        return;
      }
      const isArray = (value & CKF_ARRAY_ATTRIBUTE) !== 0 && value !== 0x80000000;
      if ((kind === 'template' || kind === 'mechanisms') !== isArray) {
        fail(`${name}: kinds template/mechanisms go with (and only with) the CKF_ARRAY_ATTRIBUTE bit`);
        return;
      }
    } else if (group === 'CKM') {
      if (kind !== undefined && !Object.hasOwn(PARAM_KINDS, kind)) {
        fail(`bad parameter kind "${kind}" for ${name}: expected one of ${Object.keys(PARAM_KINDS).join(', ')}`);
        return;
      }
    } else if (kind !== undefined) {
      fail(`${name}: only CKA_ and CKM_ lines take a kind column, got "${kind}"`);
      return;
    }
    const previous = byName.get(name);
    if (previous) {
      fail(`duplicate name ${name} (first defined on line ${previous.line})`);
      return;
    }
    const constant = { name, group, value, kind, line, section, alias: null };
    const key = `${group}:${value}`;
    const first = firstByGroupValue.get(key);
    if (first) {
      constant.alias = first;
      if ((group === 'CKA' || group === 'CKM') && first.kind !== kind) {
        fail(`${name} has the value of ${first.name} (line ${first.line}) but kind "${kind ?? ''}" instead of "${first.kind ?? ''}"`);
        return;
      }
    } else {
      firstByGroupValue.set(key, constant);
    }
    byName.set(name, constant);
    constants.push(constant);
  });
  if (constants.length === 0) errors.push(`${SOURCE}: no constants found`);
  if (errors.length > 0) {
    process.stderr.write(`gen-constants: ${errors.length} error(s) in ${SOURCE}:\n${errors.map((e) => `  ${e}\n`).join('')}`);
    process.exit(1);
  }
  return constants;
}

const HEADER_NOTE = [
  `Generated by scripts/gen-constants.mjs from ${SOURCE}. Do not edit:`,
  `change ${SOURCE} and run \`node scripts/gen-constants.mjs\`.`,
];

/** Lines of `render(constant)` for every constant, with a comment before each new section. */
function withSections(constants, comment, render) {
  const out = [];
  let section = null;
  for (const c of constants) {
    if (c.section !== section) {
      if (section !== null) out.push('');
      section = c.section;
      if (section) out.push(`${comment} ${section}`);
    }
    out.push(render(c));
  }
  return out;
}

const inPart = (part, constants) => constants.filter((c) => part.groups.includes(c.group));
const headerName = (part) => `${part.file.replace(/-/g, '_')}.h`;

function generatePartHeader(part, constants) {
  const mine = inPart(part, constants);
  const width = Math.max(...mine.map((c) => c.name.length));
  return [
    ...HEADER_NOTE.map((l) => `// ${l}`),
    '//',
    `// PKCS#11 ${part.what}:`,
    '// typed constants in namespace ck, included by constants.h.',
    '#pragma once',
    '',
    '#include "../pkcs11/types.h"',
    '',
    'namespace ck {',
    '',
    ...withSections(mine, '//', (c) => `constexpr CK_ULONG ${c.name.padEnd(width)} = ${hex8(c.value)}UL;`),
    '',
    '}  // namespace ck',
    '',
  ].join('\n');
}

function generateConstantsHeader() {
  return [
    ...HEADER_NOTE.map((l) => `// ${l}`),
    '//',
    '// PKCS#11 v2.40 constants (plus common v3.0 additions) as typed constants in namespace ck,',
    '// so they are not macros and cannot clash with a vendor header. Name lookups return the',
    '// first name listed for a value (aliases such as CKM_ECDSA_KEY_PAIR_GEN give way).',
    '#pragma once',
    '',
    ...PARTS.map((part) => `#include "${headerName(part)}"`),
    '',
    'namespace ck {',
    '',
    '// Kind of value an attribute holds (from the CKA_ kind column).',
    `enum class AttrKind { Unknown, ${Object.values(ATTR_KINDS).join(', ')} };`,
    '// Kind of parameter a mechanism takes (from the CKM_ kind column); Raw: bytes or none.',
    `enum class ParamKind { Raw, ${Object.values(PARAM_KINDS).join(', ')} };`,
    '',
    '// Standard name of a return value, attribute type or mechanism type; nullptr when unknown.',
    'const char* RvName(CK_RV rv);',
    'const char* AttributeName(CK_ATTRIBUTE_TYPE type);',
    'const char* MechanismName(CK_MECHANISM_TYPE type);',
    '',
    '// AttrKind::Unknown for attribute types not in the table (e.g. vendor-defined ones).',
    'AttrKind AttributeKind(CK_ATTRIBUTE_TYPE type);',
    '// ParamKind::Raw for mechanisms without a structured parameter known to the binding.',
    'ParamKind MechanismParamKind(CK_MECHANISM_TYPE type);',
    '',
    '}  // namespace ck',
    '',
  ].join('\n');
}

function nameSwitch(fn, argType, arg, constants, group) {
  const cases = constants.filter((c) => c.group === group && !c.alias);
  return [
    `const char* ${fn}(${argType} ${arg}) {`,
    `  switch (${arg}) {`,
    ...cases.map((c) => `    case ${c.name}: return "${c.name}";`),
    '    default: return nullptr;',
    '  }',
    '}',
  ];
}

function kindSwitch(fn, returnType, argType, constants, group, kinds, fallback) {
  const body = [];
  for (const [kind, enumerator] of Object.entries(kinds)) {
    const cases = constants.filter((c) => c.group === group && !c.alias && c.kind === kind);
    if (cases.length === 0) continue;
    body.push(...cases.map((c) => `    case ${c.name}:`), `      return ${returnType}::${enumerator};`);
  }
  return [
    `${returnType} ${fn}(${argType} type) {`,
    '  switch (type) {',
    ...body,
    '    default:',
    `      return ${returnType}::${fallback};`,
    '  }',
    '}',
  ];
}

/** A C++ source file in namespace ck with the given functions. */
function cppSource(functions) {
  return [
    ...HEADER_NOTE.map((l) => `// ${l}`),
    '#include "constants.h"',
    '',
    'namespace ck {',
    '',
    ...functions.flatMap((lines) => [...lines, '']),
    '}  // namespace ck',
    '',
  ].join('\n');
}

function generateNames(constants) {
  return cppSource([
    nameSwitch('RvName', 'CK_RV', 'rv', constants, 'CKR'),
    nameSwitch('AttributeName', 'CK_ATTRIBUTE_TYPE', 'type', constants, 'CKA'),
    nameSwitch('MechanismName', 'CK_MECHANISM_TYPE', 'type', constants, 'CKM'),
  ]);
}

function generateKinds(constants) {
  return cppSource([
    kindSwitch('AttributeKind', 'AttrKind', 'CK_ATTRIBUTE_TYPE', constants, 'CKA', ATTR_KINDS, 'Unknown'),
    kindSwitch('MechanismParamKind', 'ParamKind', 'CK_MECHANISM_TYPE', constants, 'CKM', PARAM_KINDS, 'Raw'),
  ]);
}

function tsMap(exportName, valueType, entries) {
  return [
    `export const ${exportName}: Readonly<Record<number, ${valueType}>> = Object.freeze({`,
    ...entries.map(([value, text]) => `  ${hex8(value)}: '${text}',`),
    '});',
  ];
}

const TS_NOTE = [...HEADER_NOTE.map((l) => `// ${l}`), '/* eslint-disable */'];

function generatePartTs(part, constants) {
  const mine = inPart(part, constants);
  const width = Math.max(...mine.map((c) => c.name.length));
  return [
    ...TS_NOTE,
    '//',
    `// PKCS#11 ${part.what}:`,
    '// plain numbers, exported again by constants.ts.',
    '',
    ...withSections(mine, '//', (c) => `export const ${c.name.padEnd(width)} = ${hex8(c.value)};`),
    '',
  ].join('\n');
}

/** The part's lookup tables (name maps, kind maps), or undefined when it has none. */
function generatePartTables(part, constants) {
  const firsts = (group) => constants.filter((c) => c.group === group && !c.alias);
  const quoted = (kinds) => Object.keys(kinds).map((k) => `'${k}'`).join(' | ');
  const tables = [];
  for (const group of part.groups.filter((g) => TS_NAME_GROUPS.includes(g))) {
    tables.push(`/** Standard name of each ${group}_ value (the first listed; aliases give way). */`);
    tables.push(...tsMap(`${group}_NAMES`, 'string', firsts(group).map((c) => [c.value, c.name])), '');
  }
  if (part.groups.includes('CKA')) {
    tables.push('/** Kind of value an attribute holds. */', `export type AttributeKind = ${quoted(ATTR_KINDS)};`);
    tables.push('/** Value kind of each known attribute type (CKA_). */');
    tables.push(...tsMap('ATTRIBUTE_KINDS', 'AttributeKind', firsts('CKA').map((c) => [c.value, c.kind])), '');
  }
  if (part.groups.includes('CKM')) {
    tables.push(
      '/** Kind of structured parameter a mechanism takes; mechanisms not listed take raw bytes or none. */',
      `export type MechanismParamKind = ${quoted(PARAM_KINDS)};`,
    );
    tables.push('/** Structured parameter kind of the mechanisms (CKM_) that have one. */');
    tables.push(...tsMap('PARAM_KINDS', 'MechanismParamKind', firsts('CKM').filter((c) => c.kind).map((c) => [c.value, c.kind])), '');
  }
  if (tables.length === 0) return undefined;
  return [...TS_NOTE, '//', `// Lookup tables for the PKCS#11 ${part.what}.`, '', ...tables].join('\n');
}

function generateIndexTs(tableParts) {
  return [
    ...TS_NOTE,
    '//',
    '// PKCS#11 v2.40 constants (plus common v3.0 additions) as plain numbers, and their lookup',
    '// tables: every part, from one import path.',
    '',
    ...PARTS.map((part) => `export * from './${part.file}';`),
    ...tableParts.map((part) => `export * from './${part.file}-tables';`),
    '',
  ].join('\n');
}

/** Every generated file: [path, content]. */
function generateAll(constants) {
  const outputs = [];
  const tableParts = [];
  for (const part of PARTS) {
    outputs.push([`${NATIVE_DIR}/${headerName(part)}`, generatePartHeader(part, constants)]);
    outputs.push([`${TS_DIR}/${part.file}.ts`, generatePartTs(part, constants)]);
    const tables = generatePartTables(part, constants);
    if (tables !== undefined) {
      outputs.push([`${TS_DIR}/${part.file}-tables.ts`, tables]);
      tableParts.push(part);
    }
  }
  outputs.push([`${NATIVE_DIR}/constants.h`, generateConstantsHeader()]);
  outputs.push([`${NATIVE_DIR}/names.cc`, generateNames(constants)]);
  outputs.push([`${NATIVE_DIR}/kinds.cc`, generateKinds(constants)]);
  outputs.push([`${TS_DIR}/constants.ts`, generateIndexTs(tableParts)]);
  return outputs;
}

/** Files in the generated directories that this run does not produce (left from an earlier layout). */
function leftovers(outputs) {
  const produced = new Set(outputs.map(([path]) => path));
  return [NATIVE_DIR, TS_DIR].flatMap((dir) =>
    existsSync(join(ROOT, dir)) ? readdirSync(join(ROOT, dir)).map((name) => `${dir}/${name}`).filter((path) => !produced.has(path)) : [],
  );
}

function checkPartsCoverGroups(constants) {
  const covered = new Set(PARTS.flatMap((part) => part.groups));
  const missing = [...new Set(constants.map((c) => c.group))].filter((group) => !covered.has(group));
  if (missing.length > 0) {
    process.stderr.write(`gen-constants: groups ${missing.join(', ')} are in no part: add them to PARTS in scripts/gen-constants.mjs\n`);
    process.exit(1);
  }
}

function main() {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    process.stderr.write(`gen-constants: unknown argument(s): ${unknown.join(' ')}\nusage: node scripts/gen-constants.mjs [--check]\n`);
    process.exit(2);
  }
  const check = args.includes('--check');
  let text;
  try {
    text = readFileSync(join(ROOT, SOURCE), 'utf8');
  } catch (error) {
    process.stderr.write(`gen-constants: cannot read ${SOURCE}: ${error.message}\n`);
    process.exit(1);
  }
  const constants = parse(text);
  checkPartsCoverGroups(constants);
  const outputs = generateAll(constants);
  const stale = [];
  for (const [path, content] of outputs) {
    const full = join(ROOT, path);
    const current = existsSync(full) ? readFileSync(full, 'utf8') : null;
    if (current === content) continue;
    stale.push(path);
    if (!check) {
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, content);
    }
  }
  for (const path of leftovers(outputs)) {
    stale.push(`${path} (no longer generated)`);
    if (!check) rmSync(join(ROOT, path));
  }
  const where = relative(process.cwd(), ROOT) || '.';
  if (check) {
    if (stale.length > 0) {
      process.stderr.write(
        `gen-constants: out of date with ${SOURCE}: ${stale.join(', ')}\n` +
          `run \`node ${join(where, 'scripts/gen-constants.mjs')}\` and commit the result\n`,
      );
      process.exit(1);
    }
    process.stdout.write(`gen-constants: ${outputs.length} generated files are current (${constants.length} constants)\n`);
  } else {
    process.stdout.write(
      `gen-constants: ${constants.length} constants; ` +
        (stale.length > 0 ? `wrote ${stale.join(', ')}\n` : 'all generated files already current\n'),
    );
  }
}

main();
