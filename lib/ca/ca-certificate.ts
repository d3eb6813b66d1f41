/**
 * CA certificates (roots and intermediates): the pathLen arithmetic along a chain, chain
 * verification when a CA is loaded, and the fixed extensions of a CA certificate.
 */
import { CaError } from './errors';
import { basicConstraintsExtension, extendedKeyUsageExtension, keyUsageExtension } from './extensions';
import { CertificateInfo, assertCaCertificate } from './certificate-info';
import { formatName } from './name-format';
import { verifySignature } from './signature-verify';

/**
 * How many more CA certificates may appear below `cert` in a path (undefined: unlimited).
 * `chain` holds the issuers above it, nearest first. RFC 5280 section 4.2.1.9: pathLen counts
 * the non-self-issued intermediates that may follow a CA certificate.
 */
export function remainingPathLength(cert: CertificateInfo, chain: readonly CertificateInfo[]): number | undefined {
  let remaining: number | undefined;
  const path = [cert, ...chain];
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c.pathLen === undefined) continue;
    // The certificates below path[i] that count against its pathLen: path[0..i-1], minus self-issued ones.
    const below = path.slice(0, i).filter((x) => !x.subject.equals(x.issuer)).length;
    const left = c.pathLen - below;
    if (left < 0) {
      throw new CaError('POLICY_VIOLATION', `the chain breaks the pathLen constraint ${c.pathLen} of "${formatName(c.subject)}"`);
    }
    remaining = remaining === undefined ? left : Math.min(remaining, left);
  }
  return remaining;
}

/** The pathLen for a new intermediate below a CA with `remaining` left; throws when none may be issued. */
export function childPathLength(remaining: number | undefined, requested: number | undefined): number | undefined {
  if (requested !== undefined && (!Number.isSafeInteger(requested) || requested < 0 || requested > 255)) {
    throw new CaError('INVALID_ARGUMENT', `pathLen must be an integer 0-255, got ${String(requested)}`);
  }
  if (remaining === undefined) return requested;
  if (remaining === 0) {
    throw new CaError('POLICY_VIOLATION', 'this CA may not issue CA certificates: its pathLen constraint (or an issuer\'s) allows no further intermediates');
  }
  if (requested === undefined) return remaining - 1;
  if (requested > remaining - 1) {
    throw new CaError('POLICY_VIOLATION', `pathLen ${requested} exceeds what the chain allows below this CA (at most ${remaining - 1})`);
  }
  return requested;
}

/** Checks that `cert` was issued by `chain[0]`, that by `chain[1]`, and so on; all issuers must be CAs. */
export function verifyChain(cert: CertificateInfo, chain: readonly CertificateInfo[]): void {
  let child = cert;
  for (const [i, parent] of chain.entries()) {
    assertCaCertificate(parent, `chain[${i}] ("${formatName(parent.subject)}")`);
    if (!child.issuer.equals(parent.subject)) {
      throw new CaError('CERTIFICATE_INVALID', `chain[${i}] is not the issuer of the certificate below it (issuer "${formatName(child.issuer)}", got subject "${formatName(parent.subject)}")`);
    }
    if (!verifySignature(child.signatureAlgorithm, parent.publicKey, child.tbs, child.signature)) {
      throw new CaError('CERTIFICATE_INVALID', `the signature of the certificate below chain[${i}] does not verify with chain[${i}]'s key`);
    }
    child = parent;
  }
  const top = chain.length > 0 ? chain[chain.length - 1] : cert;
  if (top.subject.equals(top.issuer) && !verifySignature(top.signatureAlgorithm, top.publicKey, top.tbs, top.signature)) {
    throw new CaError('CERTIFICATE_INVALID', 'the self-signed root does not verify with its own key');
  }
}

/** basicConstraints (cA, pathLen), keyUsage keyCertSign+cRLSign, and an optional EKU restriction. */
export function caLeadingExtensions(pathLen: number | undefined, extendedKeyUsage?: readonly string[]): Buffer {
  const parts = [basicConstraintsExtension(true, pathLen), keyUsageExtension(['keyCertSign', 'cRLSign'])];
  if (extendedKeyUsage !== undefined && extendedKeyUsage.length > 0) parts.push(extendedKeyUsageExtension(extendedKeyUsage));
  return Buffer.concat(parts);
}
