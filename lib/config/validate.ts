import { accessSync, constants, readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { Config } from './schema.js';
import type { Settings } from './settings.js';
import { acceptedBackendNames, backendTypeOf } from '../backends/registry.js';
import { tlsFiles, type GeneratedSecrets } from './embedded.js';
import { parseListenAddr } from './formats.js';
import { servesKeyType } from './tls.js';
import { checkAuthUsers } from '../auth/users.js';
import { MIN_API_KEY_LENGTH } from '../auth/api-keys.js';

const MIN_KEY_LENGTH = MIN_API_KEY_LENGTH;
const PLACEHOLDER = /^(your[-_]|change[-_]?me|changeit$|secret$|default$|example|placeholder|xxx+$)/i;

export interface CheckResult {
  /** One line per problem, each naming its key. Empty when valid. */
  problems: string[];
  /** Things worth saying that do not make the configuration invalid. */
  warnings: string[];
}

/** Every API key with the config key it came from. */
export function apiKeySources(auth: Config['auth']): { where: string; key: unknown }[] {
  return [
    ...auth.api_keys.map((key, i) => ({ where: `auth.api_keys[${i}]`, key })),
    ...Object.entries(auth.api_key_users).map(([user, key]) => ({ where: `auth.api_key_users.${user}`, key })),
    ...Object.entries(auth.users).map(([user, spec]) => ({ where: `auth.users.${user}.api_key`, key: (spec as { api_key?: unknown } | null)?.api_key })),
  ];
}

function checkKeys(auth: Config['auth'], embedded: boolean, problems: string[], warnings: string[]): void {
  const sources = apiKeySources(auth);
  if (sources.length === 0 && !embedded) {
    problems.push('auth.api_keys: no API key configured (set auth.api_keys, auth.api_key_users or auth.users)');
  }
  // Names, ids, key length and characters, duplicates: the user directory's own rules.
  const users = checkAuthUsers(auth);
  problems.push(...users.problems);
  warnings.push(...users.warnings);
  for (const [name, spec] of Object.entries(auth.users)) {
    if (spec === null || typeof spec !== 'object') continue;
    for (const field of Object.keys(spec)) {
      if (!['api_key', 'uid', 'gid', 'groups'].includes(field)) problems.push(`auth.users.${name}.${field}: unknown key (expected api_key, uid, gid, groups)`);
    }
  }
  const keys = new Map<string, string>();
  for (const { where, key } of sources) {
    if (typeof key !== 'string') continue;
    if (key.length >= MIN_KEY_LENGTH && PLACEHOLDER.test(key)) problems.push(`${where}: the API key looks like a placeholder; use a random value`);
    if (!keys.has(key)) keys.set(key, where);
  }
  for (const name of ['internal_proxy_secret', 'single_use_link_secret'] as const) {
    const value = auth[name];
    if (value === '') {
      if (!embedded) problems.push(`auth.${name}: required (empty) when metadata_store is postgres; set a random value of at least ${MIN_KEY_LENGTH} characters`);
      continue;
    }
    if (value.length < MIN_KEY_LENGTH) problems.push(`auth.${name}: shorter than ${MIN_KEY_LENGTH} characters`);
    else if (PLACEHOLDER.test(value)) problems.push(`auth.${name}: looks like a placeholder or default; use a random value`);
  }
  if (auth.internal_proxy_secret !== '' && keys.has(auth.internal_proxy_secret)) {
    problems.push(`auth.internal_proxy_secret: must differ from every API key (equals ${keys.get(auth.internal_proxy_secret)})`);
  }
}

function checkPeers(config: Config, problems: string[]): void {
  for (const [id, url] of Object.entries(config.instance_discovery.peer_endpoints)) {
    const where = `instance_discovery.peer_endpoints.${id}`;
    if (typeof url !== 'string') {
      problems.push(`${where}: must be a URL string`);
      continue;
    }
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {
      /* reported below */
    }
    const wanted = `${config.server.protocol}:`;
    if (parsed === null || parsed.protocol !== wanted || parsed.hostname === '' || (parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search !== '' || parsed.username !== '') {
      problems.push(`${where}: ${JSON.stringify(url)} is not a ${config.server.protocol} base URL like "${config.server.protocol}://host:8443"`);
    }
  }
  if (config.instance_discovery.instance_id.trim() === '') problems.push('instance_discovery.instance_id: must not be empty');
  const { peer_timeout: peerTimeout } = config.instance_discovery;
  const clientIdle = Math.min(config.server.read_timeout, config.server.write_timeout);
  const hasPeers = Object.keys(config.instance_discovery.peer_endpoints).some((id) => id !== config.instance_discovery.instance_id);
  if (peerTimeout < 1) problems.push('instance_discovery.peer_timeout: must be at least 1ms');
  // Otherwise a client waiting on a silent peer is cut off before it can be told 502.
  else if (hasPeers && peerTimeout >= clientIdle) problems.push(`instance_discovery.peer_timeout: must be below server.read_timeout and server.write_timeout (${clientIdle} ms)`);
  const { replicas, min_replicas: minReplicas } = config.backend.cas;
  const instances = 1 + Object.keys(config.instance_discovery.peer_endpoints).filter((id) => id !== config.instance_discovery.instance_id).length;
  if (replicas < 1) problems.push('backend.cas.replicas: must be at least 1');
  else if (replicas > instances) problems.push(`backend.cas.replicas: ${replicas} copies need as many instances, and this cluster has ${instances} (this one and instance_discovery.peer_endpoints)`);
  if (minReplicas > replicas) problems.push(`backend.cas.min_replicas: must not be above backend.cas.replicas (${replicas})`);
  const { heartbeat_interval: heartbeat, down_after: downAfter, lost_after: lostAfter } = config.cluster;
  if (heartbeat < 100) problems.push('cluster.heartbeat_interval: must be at least 100ms');
  else if (downAfter < 2 * heartbeat) problems.push(`cluster.down_after: must be at least twice cluster.heartbeat_interval (${heartbeat} ms), or instances flap`);
  if (lostAfter !== 0 && lostAfter < downAfter) problems.push('cluster.lost_after: must be 0 or at least cluster.down_after');
  if (config.ha.replication_enabled) {
    if (config.ha.replica_backend !== 's3') problems.push(`ha.replica_backend: ${JSON.stringify(config.ha.replica_backend)} is not a replica backend; the one there is is "s3"`);
    else if (config.backend.s3_bucket_name === '') problems.push('ha.replica_backend: "s3" needs the S3 backend configured (backend.s3_bucket_name)');
  }
}

function checkReadable(key: string, file: string, problems: string[], parse: (text: string) => void, what: string): void {
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.push(`${key}: ${file}: ${code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? 'error'})`}`);
    return;
  }
  try {
    parse(readFileSync(file, 'utf8'));
  } catch {
    problems.push(`${key}: ${file}: not a PEM ${what}`);
  }
}

function checkTls(settings: Settings, problems: string[], warnings: string[]): void {
  const { server, backend } = settings.config;
  if (server.protocol === 'http') {
    warnings.push('server.protocol is "http": traffic is not encrypted; use it only behind a TLS-terminating proxy');
    return;
  }
  const tls = tlsFiles(settings);
  // The generated certificate is EC P-256.
  let keyType: string | undefined = 'ec';
  if (!tls.generated) {
    keyType = undefined;
    checkReadable('server.cert_file', tls.certFile, problems, (t) => (keyType = new X509Certificate(t).publicKey.asymmetricKeyType), 'certificate');
    checkReadable('server.key_file', tls.keyFile, problems, (t) => createPrivateKey(t), 'private key');
  }
  if (server.tls_min_version === 'TLSv1.2' && Array.isArray(server.tls_ciphers) && !servesKeyType(server.tls_ciphers, keyType)) {
    const family = keyType === 'rsa' || keyType === 'rsa-pss' ? 'ECDHE-RSA' : 'ECDHE-ECDSA';
    problems.push(`server.tls_ciphers: no ${family} suite for the ${keyType?.toUpperCase() ?? ''} certificate: TLS 1.2 clients could not connect (add one, or set server.tls_min_version: TLSv1.3)`);
  }
  if (backend.internal_proxy_ca_file !== '') {
    checkReadable('backend.internal_proxy_ca_file', backend.internal_proxy_ca_file, problems, (t) => new X509Certificate(t), 'certificate');
  }
}

function checkStores(settings: Settings, problems: string[]): void {
  const { metadata_store: md, dlm, backend, server } = settings.config;
  if (!['', 'postgres', 'embedded'].includes(md.type)) problems.push(`metadata_store.type: unknown type ${JSON.stringify(md.type)} (use postgres or embedded)`);
  if (settings.metadataType === 'postgres') {
    if (md.dsn === '') problems.push('metadata_store.dsn: required when metadata_store.type is postgres');
    else if (!/^postgres(ql)?:\/\//.test(md.dsn)) problems.push('metadata_store.dsn: must be a postgres:// or postgresql:// URL');
  }
  if (!['', 'redis', 'local'].includes(dlm.type)) problems.push(`dlm.type: unknown type ${JSON.stringify(dlm.type)} (use redis or local)`);
  if (settings.dlmType === 'redis') {
    settings.redisAddrs.forEach((addr, i) => {
      const parsed = parseListenAddr(addr);
      if (parsed === null || parsed.host === '') problems.push(`${dlm.redis_addrs.length > 0 ? `dlm.redis_addrs[${i}]` : 'dlm.redis_addr'}: ${JSON.stringify(addr)} is not "host:port"`);
    });
  }
  if (settings.dlmType === 'local' && Object.keys(settings.config.instance_discovery.peer_endpoints).length > 0) {
    problems.push('dlm.type: "local" locks cannot guard a cluster; use redis when instance_discovery.peer_endpoints is set');
  }
  if (backendTypeOf(backend.default_backend) === undefined) problems.push(`backend.default_backend: unknown backend ${JSON.stringify(backend.default_backend)} (use ${acceptedBackendNames()})`);
  if (settings.defaultBackend === 's3' && backend.s3_bucket_name === '') problems.push('backend.s3_bucket_name: required when backend.default_backend is s3');
  if (backend.s3_server_side_encryption === 'aws:kms' && backend.s3_bucket_name !== '' && backend.s3_kms_key_id === '') problems.push('backend.s3_kms_key_id: required when backend.s3_server_side_encryption is aws:kms');
  if (backend.s3_part_size < 5 * 1024 * 1024) problems.push('backend.s3_part_size: must be at least 5MiB (the S3 minimum part size)');
  if (backend.s3_queue_size < 1) problems.push('backend.s3_queue_size: must be at least 1');
  if (backend.cas.image_size < 32 * 1024 * 1024) problems.push('backend.cas.image_size: must be at least 32MiB');
  if (backend.cas.min_free_bytes >= backend.cas.image_size) problems.push('backend.cas.min_free_bytes: must be smaller than backend.cas.image_size');
  if (backend.cas.pack_below > 1024 * 1024) problems.push('backend.cas.pack_below: must be at most 1MiB (packed blobs are read whole into memory)');
  if (backend.cas.segment_size < 64 * 1024) problems.push('backend.cas.segment_size: must be at least 64KiB');
  if (server.max_upload_bytes < 1) problems.push('server.max_upload_bytes: must be at least 1 byte');
  if (settings.config.metadata_store.tree_batch_entries < 1) problems.push('metadata_store.tree_batch_entries: must be at least 1');
}

/**
 * Check everything a type check cannot: keys, secrets, backends, peers, TLS
 * files, stores. In the embedded default, empty secrets are filled from
 * (or will be generated into) the data directory, so they are not problems.
 */
/** The paths the server's own routes use: a WebDAV prefix may not shadow them. */
const RESERVED_PREFIXES = ['/v1', '/download', '/health', '/ready', '/metrics', '/openapi.json', '/internal', '/ui'];

function checkWebdav(config: Config, problems: string[]): void {
  const { prefix } = config.webdav;
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(prefix)) {
    problems.push(`webdav.prefix: ${JSON.stringify(prefix)} must be a URL path such as "/webdav": segments of letters, digits, '.', '_', '~' or '-', no trailing '/'`);
    return;
  }
  const clash = RESERVED_PREFIXES.find((r) => prefix === r || prefix.startsWith(`${r}/`) || r.startsWith(`${prefix}/`));
  if (clash !== undefined) problems.push(`webdav.prefix: ${prefix} overlaps the server's own ${clash} routes`);
}

function checkS3(config: Config, problems: string[]): void {
  const addr = config.s3.listen_addr;
  if (addr === '') return;
  const parsed = parseListenAddr(addr);
  if (parsed === null) {
    problems.push(`s3.listen_addr: ${JSON.stringify(addr)} is not host:port (e.g. "0.0.0.0:9000"; empty turns the S3 API off)`);
    return;
  }
  const main = parseListenAddr(config.server.listen_addr);
  if (main !== null && main.port === parsed.port && parsed.port !== 0) problems.push(`s3.listen_addr: port ${parsed.port} is server.listen_addr's port`);
  if (!/^[a-z0-9-]{1,64}$/.test(config.s3.region)) problems.push(`s3.region: ${JSON.stringify(config.s3.region)} is not a region name such as "us-east-1"`);
}

export function checkConfig(settings: Settings): CheckResult {
  const problems: string[] = [];
  const warnings: string[] = [];
  const embedded = settings.metadataType === 'embedded';
  checkKeys(settings.config.auth, embedded, problems, warnings);
  checkPeers(settings.config, problems);
  checkTls(settings, problems, warnings);
  checkStores(settings, problems);
  checkWebdav(settings.config, problems);
  checkS3(settings.config, problems);
  return { problems, warnings };
}

/** The configuration with generated secrets filled in where the embedded default left them empty. */
export function withGeneratedSecrets(config: Config, secrets: GeneratedSecrets): Config {
  const auth = { ...config.auth };
  if (apiKeySources(auth).length === 0) auth.users = { admin: { api_key: secrets.api_key, uid: 0, gid: 0 } };
  if (auth.internal_proxy_secret === '') auth.internal_proxy_secret = secrets.internal_proxy_secret;
  if (auth.single_use_link_secret === '') auth.single_use_link_secret = secrets.single_use_link_secret;
  return { ...config, auth };
}

const REDACTED = '[redacted]';

/** A copy safe to print: every key and secret replaced, the DSN's password masked. */
export function redactConfig(config: Config): Config {
  const copy = structuredClone(config);
  copy.auth.api_keys = copy.auth.api_keys.map(() => REDACTED);
  copy.auth.api_key_users = Object.fromEntries(Object.keys(copy.auth.api_key_users).map((k) => [k, REDACTED]));
  for (const spec of Object.values(copy.auth.users)) if (spec !== null && typeof spec === 'object') spec.api_key = REDACTED;
  for (const key of ['internal_proxy_secret', 'single_use_link_secret'] as const) if (copy.auth[key] !== '') copy.auth[key] = REDACTED;
  for (const key of ['s3_access_key', 's3_secret_key'] as const) if (copy.backend[key] !== '') copy.backend[key] = REDACTED;
  if (copy.dlm.redis_password !== '') copy.dlm.redis_password = REDACTED;
  copy.metadata_store.dsn = copy.metadata_store.dsn.replace(/^([a-z]+:\/\/[^:/@]*:)[^@]*@/i, `$1${REDACTED}@`);
  return copy;
}
