import { expect } from 'chai';
import { writeFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, ConfigError, envKeys } from '../../lib/config/load.js';
import { prepareConfig } from '../../lib/config/index.js';
import { deriveSettings } from '../../lib/config/settings.js';
import { checkConfig, redactConfig } from '../../lib/config/validate.js';
import { parseDuration, parseSize } from '../../lib/config/formats.js';
import { ensureSelfSignedCertificate } from '../../lib/config/embedded.js';
import { generate } from 'selfsigned';
import { tempDir } from '../support/tmp.js';

const KEY_A = 'alpha-key-0123456789';
const KEY_B = 'bravo-key-0123456789';
const SECRET_1 = 'proxy-secret-0123456789';
const SECRET_2 = 'link-secret-0123456789';

describe('config', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.remove());

  const write = (name: string, text: string): string => {
    const file = join(tmp.dir, name);
    writeFileSync(file, text);
    return file;
  };
  /** Problems of a file + env, from loading and from the semantic checks. */
  const problemsOf = (text: string, env: NodeJS.ProcessEnv = {}): string[] => {
    try {
      const loaded = loadConfig({ file: write('c.yaml', text), cwd: tmp.dir, env });
      return checkConfig(deriveSettings(loaded.config, tmp.dir)).problems;
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };
  const cluster = (extra = ''): string =>
    `metadata_store:\n  dsn: "postgres://postgres@127.0.0.1/test"\nauth:\n  api_keys: ["${KEY_A}"]\n  internal_proxy_secret: "${SECRET_1}"\n  single_use_link_secret: "${SECRET_2}"\nserver:\n  protocol: http\n${extra}`;

  it('parses Go-style durations and sizes', () => {
    expect(parseDuration('30s')).to.equal(30_000);
    expect(parseDuration('1m30s')).to.equal(90_000);
    expect(parseDuration('500ms')).to.equal(500);
    expect(parseDuration('30')).to.equal(30);
    expect(Number.isNaN(parseDuration('soon'))).to.equal(true);
    expect(parseSize('64MiB')).to.equal(64 * 1024 * 1024);
    expect(parseSize('1GB')).to.equal(1e9);
    expect(Number.isNaN(parseSize('12 parsecs'))).to.equal(true);
  });

  it('uses the documented defaults with no file and no environment', () => {
    const { config } = loadConfig({ cwd: tmp.dir, env: {} });
    expect(config.server.listen_addr).to.equal(':8443');
    expect(config.server.protocol).to.equal('https');
    expect(config.server.read_timeout).to.equal(30_000);
    expect(config.backend.default_backend).to.equal('localfs');
    expect(config.instance_discovery.instance_id).to.equal('callfs-instance-1');
    expect(config.dlm.redis_addr).to.equal('localhost:6379');
    const settings = deriveSettings(config, tmp.dir);
    expect(settings.metadataType).to.equal('embedded');
    expect(settings.dlmType).to.equal('local');
    expect(settings.defaultBackend).to.equal('cas');
    expect(settings.casRoot).to.equal(join(tmp.dir, 'data', 'cas'));
  });

  it('finds config.yaml in the working directory; env beats file beats defaults', () => {
    write('config.yaml', 'server:\n  listen_addr: "127.0.0.1:9000"\n  external_url: "https://files.example.com"\nlog:\n  level: debug\n');
    const { config, file } = loadConfig({ cwd: tmp.dir, env: { CALLFS_SERVER_LISTEN_ADDR: '127.0.0.1:9100' } });
    expect(file).to.equal(join(tmp.dir, 'config.yaml'));
    expect(config.server.listen_addr).to.equal('127.0.0.1:9100');
    expect(config.server.external_url).to.equal('https://files.example.com');
    expect(config.log.level).to.equal('debug');
  });

  it('reads the original variables: comma-separated keys, JSON peers, durations', () => {
    const { config } = loadConfig({
      cwd: tmp.dir,
      env: {
        CALLFS_AUTH_API_KEYS: `${KEY_A}, ${KEY_B}`,
        CALLFS_INSTANCE_DISCOVERY_PEER_ENDPOINTS: '{"callfs-instance-2":"https://peer2:8443"}',
        CALLFS_SERVER_WRITE_TIMEOUT: '2m',
        CALLFS_METADATA_STORE_DSN: 'postgres://u@h/db',
        CALLFS_BACKEND_INTERNAL_PROXY_SKIP_TLS_VERIFY: 'true',
        CALLFS_DLM_REDIS_ADDR: 'redis1:6379',
      },
    });
    expect(config.auth.api_keys).to.deep.equal([KEY_A, KEY_B]);
    expect(config.instance_discovery.peer_endpoints).to.deep.equal({ 'callfs-instance-2': 'https://peer2:8443' });
    expect(config.server.write_timeout).to.equal(120_000);
    expect(config.backend.internal_proxy_skip_tls_verify).to.equal(true);
    const settings = deriveSettings(config, tmp.dir);
    expect(settings.metadataType).to.equal('postgres');
    expect(settings.dlmType).to.equal('redis');
    expect(settings.redisAddrs).to.deep.equal(['redis1:6379']);
  });

  it('loads the original README config file unchanged', () => {
    const original = readFileSync(new URL('../../../test/fixtures/original-config.yaml', import.meta.url), 'utf8');
    const loaded = loadConfig({ file: write('orig.yaml', original), cwd: tmp.dir, env: {} });
    expect(loaded.config.backend.s3_region).to.equal('us-west-2');
    expect(loaded.config.instance_discovery.peer_endpoints).to.have.property('callfs-instance-3');
    // It loads; what remains are real problems of its placeholder values and example paths.
    const problems = checkConfig(deriveSettings(loaded.config, tmp.dir)).problems;
    expect(problems.some((p) => p.startsWith('server.cert_file:'))).to.equal(true);
    expect(problems.some((p) => p.startsWith('auth.api_keys[0]:'))).to.equal(true);
    expect(problems.every((p) => !p.includes('unknown key'))).to.equal(true);
  });

  it('points link URLs at the listen port unless server.external_url is set', () => {
    const moved = loadConfig({ cwd: tmp.dir, env: { CALLFS_SERVER_LISTEN_ADDR: ':9443' } });
    expect(deriveSettings(moved.config, tmp.dir, moved.explicitKeys).externalUrl).to.equal('https://localhost:9443');
    const set = loadConfig({ cwd: tmp.dir, env: { CALLFS_SERVER_LISTEN_ADDR: ':9443', CALLFS_SERVER_EXTERNAL_URL: 'files.example.com' } });
    expect(deriveSettings(set.config, tmp.dir, set.explicitKeys).externalUrl).to.equal('https://files.example.com');
    const plain = loadConfig({ cwd: tmp.dir, env: {} });
    expect(deriveSettings(plain.config, tmp.dir, plain.explicitKeys).externalUrl).to.equal('https://localhost:8443');
  });

  it('accepts a valid cluster configuration', () => {
    expect(problemsOf(cluster())).to.deep.equal([]);
  });

  it('rejects a configuration without any API key outside the embedded default', () => {
    const problems = problemsOf(cluster().replace(`  api_keys: ["${KEY_A}"]\n`, ''));
    expect(problems).to.have.length(1);
    expect(problems[0]).to.match(/^auth\.api_keys: no API key/);
  });

  it('rejects short keys, duplicate keys and a proxy secret equal to a key, naming each key', () => {
    const text = `metadata_store:\n  dsn: "postgres://h/db"\nserver:\n  protocol: http\nauth:\n  api_keys: ["short", "${KEY_A}"]\n  api_key_users:\n    carol: "${KEY_A}"\n  internal_proxy_secret: "${KEY_A}"\n  single_use_link_secret: "${SECRET_2}"\n`;
    const problems = problemsOf(text);
    expect(problems).to.include('auth.api_keys[0]: the API key is shorter than 16 characters');
    expect(problems.some((p) => p.startsWith('auth.api_key_users.carol: duplicate API key'))).to.equal(true);
    expect(problems.some((p) => p.startsWith('auth.internal_proxy_secret: must differ from every API key'))).to.equal(true);
    expect(problems.join('\n')).not.to.include(KEY_A);
  });

  it('rejects empty and placeholder secrets outside the embedded default', () => {
    const problems = problemsOf(cluster().replace(`"${SECRET_1}"`, '""').replace(`"${SECRET_2}"`, '"your-link-secret"'));
    expect(problems.some((p) => p.startsWith('auth.internal_proxy_secret: required'))).to.equal(true);
    expect(problems.some((p) => p.startsWith('auth.single_use_link_secret: looks like a placeholder'))).to.equal(true);
  });

  it('accepts empty secrets and no keys in the embedded default', () => {
    expect(problemsOf('server:\n  protocol: http\n')).to.deep.equal([]);
  });

  it('rejects unknown backend names and malformed peer endpoints', () => {
    const problems = problemsOf(cluster('backend:\n  default_backend: ftp\ninstance_discovery:\n  peer_endpoints:\n    b: "peer2:8443"\n    c: "http://peer3:8443/api"\n    d: "http://peer4:8443"\n'));
    expect(problems.some((p) => p.startsWith('backend.default_backend: unknown backend'))).to.equal(true);
    expect(problems.some((p) => p.startsWith('instance_discovery.peer_endpoints.b:'))).to.equal(true);
    expect(problems.some((p) => p.startsWith('instance_discovery.peer_endpoints.c:'))).to.equal(true);
    expect(problems.some((p) => p.startsWith('instance_discovery.peer_endpoints.d:'))).to.equal(false);
  });

  it('rejects a peer timeout that a client would not live to see: at or above the read or write timeout', () => {
    const withTimeouts = (peer: string, read = '30s', write = '30s') => problemsOf(cluster(`instance_discovery:\n  peer_timeout: "${peer}"\n  peer_endpoints:\n    b: "http://peer2:8443"\n`).replace('  protocol: http\n', `  protocol: http\n  read_timeout: "${read}"\n  write_timeout: "${write}"\n`));
    expect(withTimeouts('5s')).to.deep.equal([]);
    expect(withTimeouts('30s').some((p) => p.startsWith('instance_discovery.peer_timeout: must be below'))).to.equal(true);
    expect(withTimeouts('10s', '30s', '8s').some((p) => p.startsWith('instance_discovery.peer_timeout: must be below'))).to.equal(true);
    expect(withTimeouts('0s').some((p) => p.startsWith('instance_discovery.peer_timeout: must be at least'))).to.equal(true);
    // Without peers it bounds nothing: short server timeouts alone are fine.
    expect(problemsOf(cluster().replace('  protocol: http\n', '  protocol: http\n  read_timeout: "2s"\n'))).to.deep.equal([]);
  });

  it('rejects more replicas than instances, a minimum above them, and heartbeats that would flap', () => {
    const peers = 'instance_discovery:\n  peer_endpoints:\n    b: "http://peer2:8443"\n';
    const cas = (replicas: number, min = 0) => `backend:\n  cas:\n    replicas: ${replicas}\n    min_replicas: ${min}\n`;
    expect(problemsOf(cluster(peers + cas(2)))).to.deep.equal([]);
    expect(problemsOf(cluster(peers + cas(2, 1)))).to.deep.equal([]);
    expect(problemsOf(cluster(peers + cas(3)))).to.deep.equal(['backend.cas.replicas: 3 copies need as many instances, and this cluster has 2 (this one and instance_discovery.peer_endpoints)']);
    expect(problemsOf(cluster(cas(2)))).to.have.length(1);
    expect(problemsOf(cluster(peers + cas(0)))).to.deep.equal(['backend.cas.replicas: must be at least 1']);
    expect(problemsOf(cluster(peers + cas(2, 3)))).to.deep.equal(['backend.cas.min_replicas: must not be above backend.cas.replicas (2)']);
    expect(problemsOf(cluster(peers + 'cluster:\n  heartbeat_interval: "2s"\n  down_after: "3s"\n'))).to.deep.equal([
      'cluster.down_after: must be at least twice cluster.heartbeat_interval (2000 ms), or instances flap',
    ]);
    expect(problemsOf(cluster(peers + 'cluster:\n  lost_after: "5s"\n'))).to.deep.equal(['cluster.lost_after: must be 0 or at least cluster.down_after']);
  });

  it('rejects a missing or unreadable TLS certificate and key', () => {
    const text = cluster().replace('  protocol: http\n', `  protocol: https\n  cert_file: "${join(tmp.dir, 'missing.crt')}"\n  key_file: "${write('bad.key', 'not a key')}"\n`);
    const problems = problemsOf(text);
    expect(problems.some((p) => p.startsWith('server.cert_file:') && p.endsWith('no such file'))).to.equal(true);
    expect(problems.some((p) => p.startsWith('server.key_file:') && p.endsWith('not a PEM private key'))).to.equal(true);
  });

  it('accepts real TLS files', async () => {
    const cert = join(tmp.dir, 'tls', 'a.crt');
    const key = join(tmp.dir, 'tls', 'a.key');
    await ensureSelfSignedCertificate(cert, key);
    expect(problemsOf(cluster().replace('  protocol: http\n', `  cert_file: "${cert}"\n  key_file: "${key}"\n`))).to.deep.equal([]);
  });

  it('serves TLS 1.2 and up with the six ECDHE AEAD suites by default', () => {
    const { config } = loadConfig({ cwd: tmp.dir, env: {} });
    expect(config.server.tls_min_version).to.equal('TLSv1.2');
    expect([...config.server.tls_ciphers].sort()).to.deep.equal(
      ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305'],
    );
  });

  it('takes server.tls_ciphers as a YAML list or a colon-separated OpenSSL list', () => {
    const fromFile = loadConfig({ file: write('c.yaml', cluster('  tls_ciphers: [ECDHE-RSA-AES256-GCM-SHA384, ecdhe-ecdsa-chacha20-poly1305]\n  tls_min_version: TLSv1.3\n')), cwd: tmp.dir, env: {} }).config.server;
    expect(fromFile.tls_ciphers).to.deep.equal(['ECDHE-RSA-AES256-GCM-SHA384', 'ecdhe-ecdsa-chacha20-poly1305']);
    expect(fromFile.tls_min_version).to.equal('TLSv1.3');
    const fromEnv = loadConfig({ cwd: tmp.dir, env: { CALLFS_SERVER_TLS_CIPHERS: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256' } }).config.server;
    expect(fromEnv.tls_ciphers).to.deep.equal(['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256']);
  });

  it('refuses a TLS 1.2 suite that is not ECDHE with AES-GCM or ChaCha20-Poly1305, an unknown suite, and a bad minimum version', () => {
    for (const suite of ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES128-SHA256', 'AES128-GCM-SHA256', 'DHE-RSA-AES128-GCM-SHA256', 'NO-SUCH-SUITE', 'HIGH', '!aNULL', 'TLS_AES_128_GCM_SHA256']) {
      const problems = problemsOf(cluster(), { CALLFS_SERVER_TLS_CIPHERS: `ECDHE-ECDSA-AES128-GCM-SHA256:${suite}` });
      expect(problems, suite).to.have.length(1);
      expect(problems[0], suite).to.match(/^server\.tls_ciphers: /);
      expect(problems[0], suite).to.include(suite);
    }
    expect(problemsOf(cluster('  tls_ciphers: []\n'))[0]).to.match(/^server\.tls_ciphers: /);
    for (const version of ['TLSv1.1', 'TLSv1', 'tls1.3', '1.2']) {
      const problems = problemsOf(cluster(`  tls_min_version: "${version}"\n`));
      expect(problems, version).to.have.length(1);
      expect(problems[0], version).to.match(/^server\.tls_min_version: /);
    }
  });

  it('refuses TLS 1.2 suites that cannot serve the certificate’s key type', async () => {
    const ec = { cert: join(tmp.dir, 'ec.crt'), key: join(tmp.dir, 'ec.key') };
    await ensureSelfSignedCertificate(ec.cert, ec.key);
    const rsa = await generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'rsa', keySize: 2048 });
    const rsaFiles = { cert: write('rsa.crt', rsa.cert), key: write('rsa.key', rsa.private) };
    const withTls = (files: { cert: string; key: string }, extra: string): string =>
      cluster().replace('  protocol: http\n', `  cert_file: "${files.cert}"\n  key_file: "${files.key}"\n${extra}`);
    const rsaOnly = '  tls_ciphers: "ECDHE-RSA-AES128-GCM-SHA256"\n';
    const ecdsaOnly = '  tls_ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256"\n';
    expect(problemsOf(withTls(rsaFiles, ecdsaOnly))).to.have.length(1);
    expect(problemsOf(withTls(rsaFiles, ecdsaOnly))[0]).to.match(/^server\.tls_ciphers: no ECDHE-RSA suite/);
    expect(problemsOf(withTls(ec, rsaOnly))[0]).to.match(/^server\.tls_ciphers: no ECDHE-ECDSA suite/);
    expect(problemsOf(withTls(rsaFiles, rsaOnly))).to.deep.equal([]);
    expect(problemsOf(withTls(rsaFiles, `${ecdsaOnly}  tls_min_version: TLSv1.3\n`))).to.deep.equal([]);
    expect(problemsOf(withTls(rsaFiles, ''))).to.deep.equal([]);
  });

  it('packs blobs below 64KiB by default, and refuses a packing threshold above 1MiB or a tiny segment', () => {
    const { config } = loadConfig({ cwd: tmp.dir, env: {} });
    expect(config.backend.cas.pack_below).to.equal(64 * 1024);
    expect(config.backend.cas.segment_size).to.equal(64 * 1024 * 1024);
    expect(problemsOf(cluster('backend:\n  cas:\n    pack_below: "0"\n'))).to.deep.equal([]);
    const problems = problemsOf(cluster('backend:\n  cas:\n    pack_below: 2MiB\n    segment_size: 4KiB\n'));
    expect(problems).to.include('backend.cas.pack_below: must be at most 1MiB (packed blobs are read whole into memory)');
    expect(problems).to.include('backend.cas.segment_size: must be at least 64KiB');
  });

  it('reports an unknown key in the file instead of ignoring it', () => {
    expect(problemsOf(cluster('  listen_adr: ":1"\n'))).to.include('server.listen_adr: unknown key (not part of the configuration schema)');
    expect(problemsOf(cluster('auth_extra: 1\n'))).to.include('auth_extra: unknown key (not part of the configuration schema)');
  });

  it('reports unknown fields inside auth.users entries', () => {
    const text = `metadata_store:\n  dsn: "postgres://h/db"\nserver:\n  protocol: http\nauth:\n  internal_proxy_secret: "${SECRET_1}"\n  single_use_link_secret: "${SECRET_2}"\n  users:\n    dave: { api_key: "${KEY_B}", uid: 5, gid: 5, shell: "/bin/sh" }\n`;
    const problems = problemsOf(text);
    expect(problems).to.include('auth.users.dave.shell: unknown key (expected api_key, uid, gid, groups)');
  });

  it('explains what to use instead of the original sqlite/redis/raft metadata stores', () => {
    for (const type of ['sqlite', 'redis', 'raft']) {
      const problems = problemsOf(cluster(`metadata_store_extra: 0\n`).replace('metadata_store:\n', `metadata_store:\n  type: ${type}\n`));
      expect(problems.some((p) => p.startsWith('metadata_store.type:') && /postgres/.test(p)), type).to.equal(true);
    }
  });

  it('gives one clear line for malformed YAML', () => {
    const problems = problemsOf('server:\n  listen_addr: ":8443"\n   bad: [\n');
    expect(problems).to.have.length(1);
    expect(problems[0]).to.match(/malformed YAML at line \d+/);
  });

  it('names the variable’s key for a wrong type in the environment', () => {
    const problems = problemsOf(cluster(), { CALLFS_METADATA_STORE_POOL_SIZE: 'many', CALLFS_SERVER_READ_TIMEOUT: 'forever' });
    expect(problems.some((p) => p.startsWith('metadata_store.pool_size:'))).to.equal(true);
    expect(problems.some((p) => p.startsWith('server.read_timeout:'))).to.equal(true);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf('server:\n  listen_addr: "nope"\n  protocol: http\nbackend:\n  default_backend: ftp\nbogus: 1\n');
    expect(problems.length).to.be.greaterThanOrEqual(2);
  });

  it('redacts every secret', () => {
    const { config } = loadConfig({ file: write('c.yaml', cluster(`dlm:\n  redis_password: "redis-pass-123"\n`).replace('postgres://postgres@', 'postgres://postgres:pg-pass-123@')), cwd: tmp.dir, env: {} });
    const text = JSON.stringify(redactConfig(config));
    for (const secret of [KEY_A, SECRET_1, SECRET_2, 'redis-pass-123', 'pg-pass-123']) expect(text).not.to.include(secret);
  });

  it('generates the embedded default secrets once, mode 0600, and reuses them', () => {
    const first = prepareConfig({ cwd: tmp.dir, env: { CALLFS_SERVER_PROTOCOL: 'http' }, createMissing: true });
    expect(first.generatedApiKey).to.be.a('string');
    expect(statSync(join(tmp.dir, 'data', 'secrets.json')).mode & 0o777).to.equal(0o600);
    const admin = first.settings.config.auth.users.admin;
    expect(admin?.uid).to.equal(0);
    const second = prepareConfig({ cwd: tmp.dir, env: { CALLFS_SERVER_PROTOCOL: 'http' }, createMissing: true });
    expect(second.generatedApiKey).to.equal(null);
    expect(second.settings.config.auth.users.admin?.api_key).to.equal(admin?.api_key);
    expect(second.settings.config.auth.single_use_link_secret).to.equal(first.settings.config.auth.single_use_link_secret);
  });
});

describe('config documentation', () => {
  const root = new URL('../../../', import.meta.url);
  it('config/config.example.yaml loads, names every key and every variable, with the schema defaults', () => {
    const file = new URL('config/config.example.yaml', root).pathname;
    const text = readFileSync(file, 'utf8');
    const { config } = loadConfig({ file, env: {} });
    const defaults = loadConfig({ cwd: new URL('test/', root).pathname, env: {} }).config;
    expect(config).to.deep.equal(defaults);
    for (const { path, env } of envKeys()) {
      expect(text, path).to.match(new RegExp(`^\\s*${path.split('.').pop()}:`, 'm'));
      expect(text, env).to.include(env);
    }
  });

  it('docs_markdown/02-configuration.md names every key and variable', () => {
    const text = readFileSync(new URL('docs_markdown/02-configuration.md', root), 'utf8');
    for (const { path, env } of envKeys()) {
      expect(text, path).to.include(`\`${path}\``);
      expect(text, env).to.include(env);
    }
  });
});

describe('config/cluster-example', () => {
  const dir = new URL('../../../config/cluster-example/', import.meta.url).pathname;
  const env = {
    CALLFS_AUTH_USERS: '{"admin":{"api_key":"admin-key-0123456789abcdef","uid":0,"gid":0}}',
    CALLFS_AUTH_INTERNAL_PROXY_SECRET: 'proxy-secret-0123456789abcdef',
    CALLFS_AUTH_SINGLE_USE_LINK_SECRET: 'link-secret-0123456789abcdef',
  };
  for (const i of [1, 2, 3]) {
    it(`instance-${i}.yaml loads and, with its secrets from the environment, lacks only its certificate files`, () => {
      const loaded = loadConfig({ file: join(dir, `instance-${i}.yaml`), env });
      const settings = deriveSettings(loaded.config);
      expect(settings.metadataType).to.equal('postgres');
      expect(settings.dlmType).to.equal('redis');
      expect(settings.redisAddrs).to.have.length(3);
      expect(loaded.config.instance_discovery.instance_id).to.equal(`callfs-${i}`);
      const problems = checkConfig(settings).problems;
      expect(problems.map((p) => p.split(':')[0]).sort()).to.deep.equal(['backend.internal_proxy_ca_file', 'server.cert_file', 'server.key_file']);
      expect(checkConfig(deriveSettings(loadConfig({ file: join(dir, `instance-${i}.yaml`), env: {} }).config)).problems.some((p) => p.startsWith('auth.internal_proxy_secret'))).to.equal(true);
    });
  }
});
