/**
 * --san values: 'dns:x,ip:1.2.3.4,uri:spiffe://...,email:a@b', repeatable. Values are split at
 * a comma only when a new kind: prefix follows, so a comma inside a URI survives.
 */
import type { SubjectAltNames } from '../ca/general-names';
import { UsageError } from './usage-error';

const KINDS = ['dns', 'ip', 'uri', 'email'] as const;
type Kind = (typeof KINDS)[number];

export function parseSans(values: readonly string[]): SubjectAltNames | undefined {
  const sans: Record<Kind, string[]> = { dns: [], ip: [], uri: [], email: [] };
  for (const value of values) {
    for (const entry of value.split(/,(?=\s*(?:dns|ip|uri|email):)/i)) {
      const match = /^\s*(dns|ip|uri|email):(.+?)\s*$/i.exec(entry);
      if (!match) throw new UsageError(`--san entry '${entry}' must be dns:NAME, ip:ADDRESS, uri:URI or email:ADDRESS`);
      sans[match[1].toLowerCase() as Kind].push(match[2]);
    }
  }
  const used = KINDS.filter((k) => sans[k].length > 0);
  if (used.length === 0) return undefined;
  return Object.fromEntries(used.map((k) => [k, sans[k]])) as SubjectAltNames;
}

/** Both sets of SANs, without duplicates. */
export function mergeSans(a: SubjectAltNames | undefined, b: SubjectAltNames): SubjectAltNames {
  const merged: Record<string, string[]> = {};
  for (const source of [a ?? {}, b]) {
    for (const [kind, values] of Object.entries(source) as Array<[Kind, readonly string[] | undefined]>) {
      merged[kind] = [...new Set([...(merged[kind] ?? []), ...(values ?? [])])];
    }
  }
  return merged as SubjectAltNames;
}
