/**
 * Turning an error into a message on stderr and an exit status. A Pkcs11Error is shown with
 * its CKR_ name and the function that returned it; nothing here ever prints a PIN (the
 * binding's messages do not carry arguments, and URIs are redacted).
 */
import { Pkcs11Error } from '../errors';
import { redactPkcs11Uri } from '../uri/pkcs11-uri';
import { toJson } from './output';
import { EXIT_FAILURE, EXIT_USAGE, UsageError } from './usage-error';

interface ErrorReport {
  type: string;
  message: string;
  /** CKR_ name, or a CaError code. */
  code?: string;
  function?: string;
}

function describe(error: unknown): ErrorReport {
  if (error instanceof Pkcs11Error) {
    return { type: 'Pkcs11Error', code: error.name, function: error.function, message: error.message };
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const report: ErrorReport = { type: error.name, message: redactPkcs11Uri(error.message) };
    if (typeof code === 'string' && error.name === 'CaError') report.code = code;
    return report;
  }
  return { type: 'Error', message: String(error) };
}

/** Prints the error and returns the exit status it deserves. */
export function reportError(error: unknown, options: { json: boolean; command?: string }): number {
  const usage = error instanceof UsageError;
  const report = describe(error);
  if (options.json) {
    process.stderr.write(`${toJson({ error: report })}\n`);
  } else {
    const code = report.code && !report.message.includes(report.code) ? ` [${report.code}]` : '';
    process.stderr.write(`p11: ${usage ? 'usage error' : 'error'}: ${report.message}${code}\n`);
    if (usage) process.stderr.write(`Run 'p11 ${options.command ? `${options.command} ` : ''}--help' for usage.\n`);
    if (process.env.P11_DEBUG && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  }
  return usage ? EXIT_USAGE : EXIT_FAILURE;
}
