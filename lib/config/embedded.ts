import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import type { Settings } from './settings.js';

/**
 * First-start material of the embedded default: random secrets and a
 * self-signed certificate, generated once under the data directory with mode
 * 0600 and reused on every later start.
 */
export interface GeneratedSecrets {
  api_key: string;
  internal_proxy_secret: string;
  single_use_link_secret: string;
}

export const SECRETS_FILE = 'secrets.json';
export const DEFAULT_CERT_FILE = 'server.crt';
export const DEFAULT_KEY_FILE = 'server.key';

const secretsPath = (dataDir: string): string => join(dataDir, SECRETS_FILE);

/** The generated secrets when the file exists, else null. Never creates anything. */
export function readGeneratedSecrets(dataDir: string): GeneratedSecrets | null {
  const file = secretsPath(dataDir);
  if (!existsSync(file)) return null;
  const data = JSON.parse(readFileSync(file, 'utf8')) as Partial<GeneratedSecrets>;
  if (typeof data.api_key !== 'string' || typeof data.internal_proxy_secret !== 'string' || typeof data.single_use_link_secret !== 'string') {
    throw new Error(`${file}: damaged (expected api_key, internal_proxy_secret and single_use_link_secret); remove it to generate new secrets`);
  }
  return data as GeneratedSecrets;
}

/** Read the generated secrets, creating them on first start. `created` tells whether they are new. */
export function ensureGeneratedSecrets(dataDir: string): { secrets: GeneratedSecrets; created: boolean } {
  const existing = readGeneratedSecrets(dataDir);
  if (existing !== null) return { secrets: existing, created: false };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secrets: GeneratedSecrets = {
    api_key: randomBytes(24).toString('base64url'),
    internal_proxy_secret: randomBytes(32).toString('base64url'),
    single_use_link_secret: randomBytes(32).toString('base64url'),
  };
  writeFileSync(secretsPath(dataDir), JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  return { secrets, created: true };
}

/**
 * Where the TLS files are: the configured ones, or — when cert_file/key_file are
 * left at their defaults and those files do not exist — a self-signed pair
 * under <data_dir>/tls/ (`generated: true`).
 */
export function tlsFiles(settings: Settings): { certFile: string; keyFile: string; generated: boolean } {
  const { cert_file, key_file } = settings.config.server;
  const atDefaults = cert_file === DEFAULT_CERT_FILE && key_file === DEFAULT_KEY_FILE;
  if (atDefaults && !(existsSync(cert_file) && existsSync(key_file))) {
    const dir = join(settings.dataDir, 'tls');
    return { certFile: join(dir, DEFAULT_CERT_FILE), keyFile: join(dir, DEFAULT_KEY_FILE), generated: true };
  }
  return { certFile: cert_file, keyFile: key_file, generated: false };
}

/** Create the self-signed pair at the given paths if it is missing (EC P-256, SAN localhost/127.0.0.1/::1). */
export async function ensureSelfSignedCertificate(certFile: string, keyFile: string): Promise<boolean> {
  if (existsSync(certFile) && existsSync(keyFile)) return false;
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 825 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
    ],
  });
  mkdirSync(join(certFile, '..'), { recursive: true, mode: 0o700 });
  mkdirSync(join(keyFile, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  writeFileSync(certFile, pems.cert, { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  return true;
}
