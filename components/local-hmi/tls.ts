/**
 * The HTTPS certificate: the configured PEM files, or one generated at first start (selfsigned,
 * ECDSA P-256, 10 years) with subjectAltName = the configured host names, the gateway's host
 * name, its interface addresses and localhost, kept as `hmi-cert.pem` / `hmi-key.pem` (0600) in the
 * work folder so browsers that trusted it once keep trusting it. Operators compare the SHA-256
 * fingerprint the component logs with what the browser shows (docs/local-hmi.md "Certificate").
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, FatalError } from '../lib/errors';

export interface TlsMaterial {
  cert: string;
  key: string;
  fingerprint256: string;
  generated: boolean;
  subjectAltName: string;
  file: string;
}

export const GENERATED_CERT = 'hmi-cert.pem';
export const GENERATED_KEY = 'hmi-key.pem';

/** The gateway's own addresses (IPv4 and IPv6, without link-local scope ids). */
export function gatewayAddresses(): string[] {
  const out = new Set<string>(['127.0.0.1', '::1']);
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (!a.address.includes('%')) out.add(a.address);
  }
  return [...out];
}

function describe(cert: string, key: string, generated: boolean, file: string): TlsMaterial {
  const x = new X509Certificate(cert);
  return { cert, key, fingerprint256: x.fingerprint256, generated, subjectAltName: x.subjectAltName ?? '', file };
}

export async function loadOrCreateTls(o: { certPath: string; keyPath: string; workDir: string; hostnames: readonly string[] }): Promise<TlsMaterial> {
  if (o.certPath && o.keyPath) {
    const certFile = path.resolve(o.workDir, o.certPath);
    const keyFile = path.resolve(o.workDir, o.keyPath);
    let cert: string;
    let key: string;
    try {
      cert = fs.readFileSync(certFile, 'utf8');
    } catch (err) {
      throw new ConfigError('tls.certPath', `tls.certPath: cannot read ${certFile} (${(err as NodeJS.ErrnoException).code ?? String(err)}); allowed: a readable PEM certificate`);
    }
    try {
      key = fs.readFileSync(keyFile, 'utf8');
    } catch (err) {
      throw new ConfigError('tls.keyPath', `tls.keyPath: cannot read ${keyFile} (${(err as NodeJS.ErrnoException).code ?? String(err)}); allowed: a readable PEM private key`);
    }
    try {
      return describe(cert, key, false, certFile);
    } catch (err) {
      throw new ConfigError('tls.certPath', `tls.certPath: ${certFile} is not a PEM certificate (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  const certFile = path.join(o.workDir, GENERATED_CERT);
  const keyFile = path.join(o.workDir, GENERATED_KEY);
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) {
    return describe(fs.readFileSync(certFile, 'utf8'), fs.readFileSync(keyFile, 'utf8'), false, certFile);
  }
  const host = os.hostname();
  const dns = new Set<string>(['localhost', ...o.hostnames, ...(host ? [host] : [])]);
  const altNames = [...[...dns].map((value) => ({ type: 2 as const, value })), ...gatewayAddresses().map((ip) => ({ type: 7 as const, ip }))];
  const now = Date.now();
  let pems;
  try {
    // Loaded only when a certificate is made (first start): its X.509 code stays out of memory otherwise.
    const { generate } = require('selfsigned') as typeof import('selfsigned');
    pems = await generate([{ name: 'commonName', value: o.hostnames[0] ?? host ?? 'localhost' }, { name: 'organizationName', value: 'dCMMS Edge LocalHmi' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: new Date(now - 86_400_000),
      notAfterDate: new Date(now + 10 * 365 * 86_400_000),
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames },
      ],
    });
  } catch (err) {
    throw new FatalError('TLS_GENERATE', `cannot generate the HMI certificate: ${err instanceof Error ? err.message : String(err)}`);
  }
  // The key first, created 0600 (never world-readable, not even for a moment), then the certificate.
  fs.writeFileSync(keyFile, pems.private, { mode: 0o600 });
  fs.chmodSync(keyFile, 0o600);
  fs.writeFileSync(certFile, pems.cert, { mode: 0o600 });
  return describe(pems.cert, pems.private, true, certFile);
}
