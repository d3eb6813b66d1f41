#!/usr/bin/env node
// Generates the PKCS#11 constant tables for C++ and TypeScript from constants/pkcs11.txt, the
// single source of truth:
//   native/generated/constants.h   constexpr constants in namespace ck, lookup declarations
//   native/generated/constants.cc  name / kind lookups as switch statements
//   lib/generated/constants.ts     exported constants, name maps and kind maps
//
// Usage: node scripts/gen-constants.mjs           write the files (only those that changed)
//        node scripts/gen-constants.mjs --check   exit 1 if any generated file is out of date
//
// No dependencies: plain Node (>= 18) ESM. Output is deterministic (data-file order, no dates).

import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = 'constants/pkcs11.txt';
const OUT_H = 'native/generated/constants.h';
const OUT_CC = 'native/generated/constants.cc';
const OUT_TS = 'lib/generated/constants.ts';

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

function generateHeader(constants) {
  const width = Math.max(...constants.map((c) => c.name.length));
  return [
    ...HEADER_NOTE.map((l) => `// ${l}`),
    '//',
    '// PKCS#11 v2.40 constants (plus common v3.0 additions) as typed constants in namespace ck,',
    '// so they are not macros and cannot clash with a vendor header. Name lookups return the',
    '// first name listed for a value (aliases such as CKM_ECDSA_KEY_PAIR_GEN give way).',
    '#pragma once',
    '',
    '#include "../pkcs11/types.h"',
    '',
    'namespace ck {',
    '',
    ...withSections(constants, '//', (c) => `constexpr CK_ULONG ${c.name.padEnd(width)} = ${hex8(c.value)}UL;`),
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

function generateSource(constants) {
  return [
    ...HEADER_NOTE.map((l) => `// ${l}`),
    '#include "constants.h"',
    '',
    'namespace ck {',
    '',
    ...nameSwitch('RvName', 'CK_RV', 'rv', constants, 'CKR'),
    '',
    ...nameSwitch('AttributeName', 'CK_ATTRIBUTE_TYPE', 'type', constants, 'CKA'),
    '',
    ...nameSwitch('MechanismName', 'CK_MECHANISM_TYPE', 'type', constants, 'CKM'),
    '',
    ...kindSwitch('AttributeKind', 'AttrKind', 'CK_ATTRIBUTE_TYPE', constants, 'CKA', ATTR_KINDS, 'Unknown'),
    '',
    ...kindSwitch('MechanismParamKind', 'ParamKind', 'CK_MECHANISM_TYPE', constants, 'CKM', PARAM_KINDS, 'Raw'),
    '',
    '}  // namespace ck',
    '',
  ].join('\n');
}

function tsMap(exportName, valueType, entries) {
  return [
    `export const ${exportName}: Readonly<Record<number, ${valueType}>> = Object.freeze({`,
    ...entries.map(([value, text]) => `  ${hex8(value)}: '${text}',`),
    '});',
  ];
}

function generateTypeScript(constants) {
  const width = Math.max(...constants.map((c) => c.name.length));
  const firsts = (group) => constants.filter((c) => c.group === group && !c.alias);
  const quoted = (kinds) => Object.keys(kinds).map((k) => `'${k}'`).join(' | ');
  const out = [
    ...HEADER_NOTE.map((l) => `// ${l}`),
    '//',
    '// PKCS#11 v2.40 constants (plus common v3.0 additions) as plain numbers. The *_NAMES maps',
    '// give the first name listed for a value (aliases such as CKM_ECDSA_KEY_PAIR_GEN give way).',
    '/* eslint-disable */',
    '',
    ...withSections(constants, '//', (c) => `export const ${c.name.padEnd(width)} = ${hex8(c.value)};`),
    '',
    '/** Kind of value an attribute holds. */',
    `export type AttributeKind = ${quoted(ATTR_KINDS)};`,
    '/** Kind of structured parameter a mechanism takes; mechanisms not listed take raw bytes or none. */',
    `export type MechanismParamKind = ${quoted(PARAM_KINDS)};`,
    '',
  ];
  for (const group of TS_NAME_GROUPS) {
    out.push(`/** Standard name of each ${group}_ value. */`);
    out.push(...tsMap(`${group}_NAMES`, 'string', firsts(group).map((c) => [c.value, c.name])), '');
  }
  out.push('/** Value kind of each known attribute type (CKA_). */');
  out.push(...tsMap('ATTRIBUTE_KINDS', 'AttributeKind', firsts('CKA').map((c) => [c.value, c.kind])), '');
  out.push('/** Structured parameter kind of the mechanisms (CKM_) that have one. */');
  out.push(...tsMap('PARAM_KINDS', 'MechanismParamKind', firsts('CKM').filter((c) => c.kind).map((c) => [c.value, c.kind])));
  out.push('');
  return out.join('\n');
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
  const outputs = [
    [OUT_H, generateHeader(constants)],
    [OUT_CC, generateSource(constants)],
    [OUT_TS, generateTypeScript(constants)],
  ];
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
