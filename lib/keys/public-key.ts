import type { Template } from '../template/template';
import { ecPublicKeyToSpki, ed25519PublicKeyToSpki, rsaPublicKeyToSpki } from './spki';

/** DER SubjectPublicKeyInfo from a public key's attributes (as read by Pkcs11Object.get). */
export function publicKeySpkiFromTemplate(template: Template): Buffer {
  switch (template.keyType) {
    case 'ec':
      if (!template.ecParams || !template.ecPoint) throw new Error('the EC key lacks CKA_EC_PARAMS or CKA_EC_POINT');
      return ecPublicKeyToSpki(template.ecParams, template.ecPoint);
    case 'ecEdwards':
      if (!template.ecPoint) throw new Error('the Edwards key lacks CKA_EC_POINT');
      return ed25519PublicKeyToSpki(template.ecPoint);
    case 'rsa':
      if (!template.modulus || !template.publicExponent) {
        throw new Error('the RSA key lacks CKA_MODULUS or CKA_PUBLIC_EXPONENT');
      }
      return rsaPublicKeyToSpki(template.modulus, template.publicExponent);
    default:
      throw new Error(`no SubjectPublicKeyInfo encoding for key type ${String(template.keyType)}`);
  }
}
