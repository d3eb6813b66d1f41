/**
 * Checks every certificate the load test got back with node:crypto (OpenSSL underneath, not
 * the CA's own code): issued by the CA (checkIssued), signed by its key (verify), certifying the
 * requested key, and each serial used once.
 */
import { X509Certificate } from 'crypto';

export interface VerificationReport {
  total: number;
  verified: number;
  uniqueSerials: number;
  /** The first few problems, for the report. */
  failures: string[];
}

export function verifyCertificates(caPem: string, pems: readonly string[], expectedSpki: Buffer): VerificationReport {
  const ca = new X509Certificate(caPem);
  const serials = new Set<string>();
  const failures: string[] = [];
  let verified = 0;
  for (const pem of pems) {
    try {
      const leaf = new X509Certificate(pem); // the first certificate of the chain
      serials.add(leaf.serialNumber);
      const problems = [
        leaf.checkIssued(ca) ? undefined : 'not issued by the CA',
        leaf.verify(ca.publicKey) ? undefined : 'signature does not verify with the CA key',
        leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(expectedSpki) ? undefined : 'certifies another key',
      ].filter((p): p is string => p !== undefined);
      if (problems.length === 0) verified++;
      else if (failures.length < 5) failures.push(`serial ${leaf.serialNumber}: ${problems.join(', ')}`);
    } catch (error) {
      if (failures.length < 5) failures.push(`unparseable certificate: ${(error as Error).message}`);
    }
  }
  return { total: pems.length, verified, uniqueSerials: serials.size, failures };
}
