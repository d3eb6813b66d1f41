/**
 * CertificateAuthority: a CA certificate bound to an HSM key. It creates roots and
 * intermediates, issues end-entity certificates from CSRs or public keys, revokes, and signs
 * CRLs. Everything fixed per CA (issuer name, AKI, signature AlgorithmIdentifier, distribution
 * extensions) is encoded once at construction, so issuing costs little more than the HSM's
 * signature.
 */
import { randomBytes } from 'crypto';
import type { Pkcs11Signer } from '../keys/signer';
import { SignatureAlgorithm, SignatureAlgorithmName, dataToSign, selectAlgorithm, signatureValue } from './algorithms';
import { caLeadingExtensions, childPathLength, remainingPathLength, verifyChain } from './ca-certificate';
import { TbsTemplate, assembleTbs, signStructure } from './certificate';
import { CertificateInfo, assertCaCertificate, readCertificate } from './certificate-info';
import { RevocationEntry, RevocationList, RevokeOptions, assembleTbsCertList } from './crl';
import { CaError } from './errors';
import { authorityKeyIdentifierExtension, encodeExtraExtensions, ExtraExtension, subjectKeyIdentifierExtension } from './extensions';
import { DistributionOptions, distributionExtensions } from './extensions-access';
import { IssueRequest, ProfileCache, PublicKeyInput, prepareEndEntity } from './issuance';
import { EMPTY_NAME, NameInput, encodeName } from './names';
import { formatName } from './name-format';
import { OID } from './oids';
import { toPem } from './pem';
import { SubjectPublicKey } from './public-keys';
import { MemorySerialRegistry, SerialRegistry, claimSerial } from './serials';
import { verifySignature } from './signature-verify';
import { ValidityRequest, computeValidity } from './validity';

/** Settings shared by every way of obtaining a CertificateAuthority. */
export interface AuthorityOptions extends DistributionOptions {
  /** The HSM key of this CA. Its public key must equal the CA certificate's. */
  signer: Pkcs11Signer;
  /** Signature algorithm; default by key: ecdsa-with-SHA256/384/512 per curve, sha256WithRSAEncryption, Ed25519. */
  algorithm?: SignatureAlgorithmName;
  /** Where serials are recorded for uniqueness; default an in-memory registry. */
  serialRegistry?: SerialRegistry;
  /** Not-before backdate for clock skew, in seconds (default 300). */
  backdateSeconds?: number;
  /** A validity past the issuer's not-after is clamped to it (default) or refused. */
  validityOverflow?: 'clamp' | 'reject';
  /** Already revoked serials, to carry revocations across restarts. */
  revocations?: readonly RevocationEntry[];
  /** The last CRL number issued (the next CRL gets this + 1). Default 0. */
  lastCrlNumber?: bigint;
  /** Source of the current time (tests, replay). Default `() => new Date()`. */
  clock?: () => Date;
}

/** A new self-signed root. */
export interface CreateRootOptions extends AuthorityOptions, ValidityRequest {
  subject: NameInput;
  /** Maximum number of intermediates below the root; default unlimited. */
  pathLen?: number;
}

/** An existing CA certificate (with its issuers, nearest first) and its HSM key. */
export interface LoadOptions extends AuthorityOptions {
  certificate: Buffer | string;
  chain?: readonly (Buffer | string)[];
}

/** A CA certificate to issue below this CA. */
export interface IntermediateRequest extends ValidityRequest {
  subject: NameInput;
  /** Default: one less than what this CA allows (unlimited if it has no limit). */
  pathLen?: number;
  /** Restrict the intermediate to these purposes (an EKU in a CA certificate constrains the chain in practice). */
  extendedKeyUsage?: readonly string[];
  extensions?: readonly ExtraExtension[];
}

/** A certificate the CA issued. */
export interface IssuedCertificate {
  der: Buffer;
  pem: string;
  /** Serial as lower-case hex. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** This certificate followed by the intermediates above it; the root is left out, as TLS peers expect. */
  chain: Buffer[];
  chainPem: string;
}

export interface IssuedCrl {
  der: Buffer;
  pem: string;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
}

const CA_MAX_DAYS = 100 * 365;

export class CertificateAuthority {
  private readonly signer: Pkcs11Signer;
  private readonly key: SubjectPublicKey;
  private readonly alg: SignatureAlgorithm;
  private readonly cert: CertificateInfo;
  private readonly issuers: readonly CertificateInfo[];
  private readonly remainingPathLen: number | undefined;
  private readonly base: Omit<TbsTemplate, 'leadingExtensions'>;
  private readonly profiles = new ProfileCache();
  private readonly registry: SerialRegistry;
  private readonly revocationList: RevocationList;
  private readonly options: AuthorityOptions;
  private readonly intermediatesPem: string;
  private readonly intermediatesDer: Buffer[];
  private crlNumber: bigint;

  private constructor(options: AuthorityOptions, cert: CertificateInfo, issuers: CertificateInfo[]) {
    backdateSeconds(options);
    if (options.validityOverflow !== undefined && options.validityOverflow !== 'clamp' && options.validityOverflow !== 'reject') {
      throw new CaError('INVALID_ARGUMENT', `validityOverflow must be 'clamp' or 'reject'`);
    }
    this.options = options;
    this.signer = options.signer;
    this.cert = cert;
    this.issuers = issuers;
    this.key = cert.publicKey;
    this.alg = selectAlgorithm(this.key, options.algorithm);
    this.remainingPathLen = remainingPathLength(cert, issuers);
    // The issuer name and AKI come from this CA's certificate, byte for byte, so chains link.
    this.base = {
      signatureAlgorithm: this.alg.identifier,
      issuer: cert.subject,
      authorityKeyIdentifier: authorityKeyIdentifierExtension(cert.subjectKeyIdentifier ?? this.key.keyIdentifier),
      trailingExtensions: Buffer.concat(distributionExtensions(options)),
    };
    this.registry = options.serialRegistry ?? new MemorySerialRegistry();
    this.revocationList = new RevocationList(options.revocations);
    this.crlNumber = options.lastCrlNumber ?? 0n;
    const chain = [cert, ...issuers];
    this.intermediatesDer = chain.filter((c) => !c.subject.equals(c.issuer)).map((c) => c.der);
    this.intermediatesPem = this.intermediatesDer.map((d) => toPem('CERTIFICATE', d)).join('');
  }

  /** Creates a self-signed root CA certificate for the signer's key and returns the CA. */
  static async createRoot(options: CreateRootOptions): Promise<CertificateAuthority> {
    const key = signerKey(options.signer);
    const alg = selectAlgorithm(key, options.algorithm);
    const subject = caSubject(options.subject);
    const now = (options.clock ?? (() => new Date()))();
    const { notBefore, notAfter } = computeValidity(options, {
      now,
      backdateSeconds: backdateSeconds(options),
      defaultDays: 3650,
      maxDays: CA_MAX_DAYS,
      overflow: 'reject',
    });
    const pathLen = childPathLength(undefined, options.pathLen);
    const registry = options.serialRegistry ?? new MemorySerialRegistry();
    const tbs = assembleTbs(
      {
        signatureAlgorithm: alg.identifier,
        issuer: subject,
        leadingExtensions: caLeadingExtensions(pathLen),
        authorityKeyIdentifier: authorityKeyIdentifierExtension(key.keyIdentifier),
        trailingExtensions: Buffer.alloc(0),
      },
      { serial: await claimSerial(registry), notBefore, notAfter, subject, spki: key.spki, subjectKeyIdentifier: subjectKeyIdentifierExtension(key.keyIdentifier), extra: [] },
    );
    const der = await signStructure(options.signer, alg, key, tbs);
    return CertificateAuthority.load({ ...options, serialRegistry: registry, certificate: der });
  }

  /**
   * A CA from its certificate, its issuers and its HSM key. Refuses a signer that cannot sign,
   * a key that differs from the certificate's, and (by signing a random challenge) a token whose
   * private key does not match its public key.
   */
  static async load(options: LoadOptions): Promise<CertificateAuthority> {
    const cert = readCertificate(options.certificate);
    assertCaCertificate(cert, 'the CA certificate');
    const issuers = (options.chain ?? []).map((c) => readCertificate(c));
    verifyChain(cert, issuers);
    const key = signerKey(options.signer);
    if (!key.equals(cert.publicKey)) {
      throw new CaError('KEY_MISMATCH', `the signer's public key is not the key of the CA certificate "${formatName(cert.subject)}"; refusing to issue with it`);
    }
    const ca = new CertificateAuthority(options, cert, issuers);
    await ca.proveKeyPossession();
    return ca;
  }

  private async proveKeyPossession(): Promise<void> {
    const challenge = randomBytes(32);
    let ok = false;
    try {
      const raw = await this.signer.sign(this.alg.mechanism, dataToSign(this.alg, challenge));
      ok = verifySignature(this.alg.identifier, this.key, challenge, signatureValue(this.alg, this.key, raw));
    } catch (e) {
      throw new CaError('KEY_MISMATCH', `the HSM key could not sign a ${this.alg.name} test signature: ${(e as Error).message}`, { cause: e });
    }
    if (!ok) throw new CaError('KEY_MISMATCH', 'a test signature by the HSM key does not verify with the CA certificate\'s public key');
  }

  /** DER of this CA's certificate. */
  get certificate(): Buffer {
    return this.cert.der;
  }

  get certificatePem(): string {
    return toPem('CERTIFICATE', this.cert.der);
  }

  /** This CA's certificate and its issuers up to the root (when known), DER, nearest first. */
  get chain(): Buffer[] {
    return [this.cert.der, ...this.issuers.map((c) => c.der)];
  }

  /** The self-signed root of the chain, if known. */
  get root(): Buffer | undefined {
    const top = this.issuers.length > 0 ? this.issuers[this.issuers.length - 1] : this.cert;
    return top.subject.equals(top.issuer) ? top.der : undefined;
  }

  /** RFC 4514 form of this CA's subject. */
  get subject(): string {
    return formatName(this.cert.subject);
  }

  get notAfter(): Date {
    return this.cert.notAfter;
  }

  get signatureAlgorithm(): SignatureAlgorithmName {
    return this.alg.name;
  }

  /** How many more CA levels may be created below this CA (undefined: unlimited). */
  get remainingPathLength(): number | undefined {
    return this.remainingPathLen;
  }

  private now(): Date {
    return (this.options.clock ?? (() => new Date()))();
  }

  private validityPolicy(): { now: Date; backdateSeconds: number; issuerNotBefore: Date; issuerNotAfter: Date; overflow: 'clamp' | 'reject' } {
    return {
      now: this.now(),
      backdateSeconds: backdateSeconds(this.options),
      issuerNotBefore: this.cert.notBefore,
      issuerNotAfter: this.cert.notAfter,
      overflow: this.options.validityOverflow ?? 'clamp',
    };
  }

  private result(der: Buffer, serial: Buffer, notBefore: Date, notAfter: Date): IssuedCertificate {
    const pem = toPem('CERTIFICATE', der);
    return { der, pem, serial: serial.toString('hex'), notBefore, notAfter, chain: [der, ...this.intermediatesDer], chainPem: pem + this.intermediatesPem };
  }

  /**
   * Issues an end-entity certificate under a profile, from a CSR (signature verified first) or
   * a bare public key. Throws CaError for anything the profile or the chain does not allow.
   */
  async issue(request: IssueRequest): Promise<IssuedCertificate> {
    const parts = prepareEndEntity(request, this.profiles, this.validityPolicy());
    if (parts.key.equals(this.key)) throw new CaError('POLICY_VIOLATION', 'an end-entity certificate must not certify the CA\'s own key');
    const claimed = claimSerial(this.registry);
    const serial = Buffer.isBuffer(claimed) ? claimed : await claimed;
    const tbs = assembleTbs(
      { ...this.base, leadingExtensions: parts.profile.leadingExtensions },
      { serial, notBefore: parts.notBefore, notAfter: parts.notAfter, subject: parts.subject, spki: parts.key.spki, subjectKeyIdentifier: parts.subjectKeyIdentifier, subjectAltName: parts.subjectAltName, extra: parts.extra },
    );
    const der = await signStructure(this.signer, this.alg, this.key, tbs);
    return this.result(der, serial, parts.notBefore, parts.notAfter);
  }

  /** Issues an intermediate CA certificate for a key held elsewhere. pathLen is enforced along the chain. */
  async issueIntermediate(request: IntermediateRequest & { publicKey: PublicKeyInput }): Promise<IssuedCertificate> {
    const key = SubjectPublicKey.from(request.publicKey);
    const pathLen = childPathLength(this.remainingPathLen, request.pathLen);
    const subject = caSubject(request.subject);
    if (subject.equals(this.cert.subject)) throw new CaError('POLICY_VIOLATION', 'an intermediate must not have the same subject as its issuer');
    if (key.equals(this.key)) throw new CaError('POLICY_VIOLATION', 'an intermediate must not reuse its issuer\'s key');
    const { notBefore, notAfter } = computeValidity(request, { ...this.validityPolicy(), defaultDays: 5 * 365, maxDays: CA_MAX_DAYS });
    const serial = await claimSerial(this.registry);
    const tbs = assembleTbs(
      { ...this.base, leadingExtensions: caLeadingExtensions(pathLen, request.extendedKeyUsage) },
      {
        serial,
        notBefore,
        notAfter,
        subject,
        spki: key.spki,
        subjectKeyIdentifier: subjectKeyIdentifierExtension(key.keyIdentifier),
        extra: encodeExtraExtensions(request.extensions, new Set([OID.keyUsage, OID.extKeyUsage])),
      },
    );
    const der = await signStructure(this.signer, this.alg, this.key, tbs);
    return this.result(der, serial, notBefore, notAfter);
  }

  /** Issues an intermediate for an HSM key and returns it as a ready CertificateAuthority. */
  async createIntermediate(request: IntermediateRequest & AuthorityOptions): Promise<CertificateAuthority> {
    const issued = await this.issueIntermediate({ ...request, publicKey: signerKey(request.signer) });
    return CertificateAuthority.load({ ...request, certificate: issued.der, chain: this.chain });
  }

  /** Marks a serial revoked; it appears in the next CRL. */
  revoke(serial: string | Buffer, options: RevokeOptions = {}): RevocationEntry {
    return this.revocationList.revoke(serial, options, this.now());
  }

  /** Lifts a certificateHold. */
  release(serial: string | Buffer): void {
    this.revocationList.release(serial);
  }

  /** Revoked serials, for persistence or inspection. */
  get revocations(): RevocationEntry[] {
    return this.revocationList.list();
  }

  /** Signs a v2 CRL of every revocation so far, with the next CRL number and this CA's AKI. */
  async issueCrl(options: { thisUpdate?: Date; nextUpdate?: Date; validityHours?: number } = {}): Promise<IssuedCrl> {
    if (this.cert.keyUsage && !this.cert.keyUsage.has('cRLSign')) throw new CaError('POLICY_VIOLATION', 'this CA certificate lacks the cRLSign key usage');
    const thisUpdate = new Date(Math.floor((options.thisUpdate ?? this.now()).getTime() / 1000) * 1000);
    const hours = options.validityHours ?? 24 * 7;
    if (options.nextUpdate === undefined && !(hours > 0)) throw new CaError('INVALID_ARGUMENT', 'validityHours must be positive');
    const nextUpdate = new Date(Math.floor((options.nextUpdate ?? new Date(thisUpdate.getTime() + hours * 3_600_000)).getTime() / 1000) * 1000);
    const crlNumber = ++this.crlNumber; // taken before the await, so concurrent calls never share a number
    const tbs = assembleTbsCertList({ ...this.base, crlNumber, thisUpdate, nextUpdate, entries: this.revocationList.list() });
    const der = await signStructure(this.signer, this.alg, this.key, tbs);
    return { der, pem: toPem('X509 CRL', der), crlNumber, thisUpdate, nextUpdate };
  }
}

/** The signer's public key, after refusing a signer that must not sign. */
function signerKey(signer: Pkcs11Signer): SubjectPublicKey {
  if (typeof signer !== 'object' || signer === null || typeof signer.sign !== 'function') {
    throw new CaError('INVALID_ARGUMENT', 'signer must be a Pkcs11Signer');
  }
  if (!signer.canSign) throw new CaError('SIGNER_CANNOT_SIGN', 'the signer\'s private key does not allow signing (CKA_SIGN is false); a CA cannot use it');
  const key = SubjectPublicKey.from(signer.publicKeySpki);
  if (key.keyType !== signer.keyType) {
    throw new CaError('KEY_MISMATCH', `the signer says its key is ${signer.keyType}, but its public key is ${key.keyType}`);
  }
  return key;
}

/** The configured backdate, checked: 0 to 86,400 seconds (default 300). */
function backdateSeconds(options: AuthorityOptions): number {
  const value = options.backdateSeconds ?? 300;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 86_400) {
    throw new CaError('INVALID_ARGUMENT', `backdateSeconds must be 0-86400, got ${String(value)}`);
  }
  return value;
}

/** A CA's subject must be non-empty (RFC 5280 section 4.1.2.6). */
function caSubject(input: NameInput): Buffer {
  const subject = encodeName(input);
  if (subject.equals(EMPTY_NAME)) throw new CaError('INVALID_NAME', 'a CA certificate needs a non-empty subject');
  return subject;
}
