import { expect } from 'chai';
import { writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, startCliServer } from '../support/cli.js';
import { request } from '../support/http.js';
import { tempDir } from '../support/tmp.js';

const KEY = 'cli-test-key-0123456789';

describe('callfs CLI', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir('callfs-cli-');
  });
  afterEach(() => tmp.remove());

  const write = (name: string, text: string): string => {
    writeFileSync(join(tmp.dir, name), text);
    return join(tmp.dir, name);
  };
  const noStackTrace = (text: string): void => {
    expect(text).not.to.match(/^\s+at /m);
  };

  it('is built executable, so the bin link npx runs works without `node` in front', async () => {
    const { execFile } = await import('node:child_process');
    const { CLI } = await import('../support/cli.js');
    expect(statSync(CLI).mode & 0o111, 'execute bits of dist/cmd/callfs.js').to.equal(0o111);
    const out = await new Promise<string>((resolve, reject) => execFile(CLI, ['--help'], (err, stdout) => (err ? reject(err) : resolve(stdout))));
    expect(out).to.include('config');
  });

  describe('config validate', () => {
    it('prints "Configuration is valid" and the effective settings with secrets redacted, exit 0', async () => {
      const file = write('c.yaml', `auth:\n  api_keys: ["${KEY}"]\n  single_use_link_secret: "link-secret-0123456789"\nserver:\n  protocol: http\n`);
      const res = await runCli(['config', 'validate', '-c', file], { cwd: tmp.dir });
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout.split('\n')[0]).to.equal('Configuration is valid');
      expect(res.stdout).to.include('metadata_store: embedded');
      expect(res.stdout).to.match(/cas_root: .*data\/cas/);
      expect(res.stdout).to.match(/cas_mode: "?(loop|dir) \(auto: /);
      expect(res.stdout).not.to.include(KEY);
      expect(res.stdout).not.to.include('link-secret-0123456789');
      expect(res.stdout).to.include('[redacted]');
    });

    it('lists every problem, one line each naming the key, exit 1, no stack trace', async () => {
      const file = write('c.yaml', `metadata_store:\n  dsn: "postgres://h/db"\nauth:\n  api_keys: ["short", "${KEY}", "${KEY}"]\n  internal_proxy_secret: "${KEY}"\nbackend:\n  default_backend: tape\ninstance_discovery:\n  peer_endpoints:\n    b: "not a url"\nserver:\n  cert_file: /nonexistent/cert.pem\n  key_file: /nonexistent/key.pem\n  colour: blue\n`);
      const res = await runCli(['config', 'validate', '--config', file], { cwd: tmp.dir });
      expect(res.code).to.equal(1);
      const lines = res.stderr.trim().split('\n');
      for (const key of ['server.colour', 'auth.api_keys[0]', 'auth.api_keys[2]', 'auth.internal_proxy_secret', 'auth.single_use_link_secret', 'backend.default_backend', 'instance_discovery.peer_endpoints.b', 'server.cert_file', 'server.key_file']) {
        expect(lines.some((l) => l.startsWith(`callfs: ${key}:`)), key).to.equal(true);
      }
      expect(res.stderr).not.to.include(KEY);
      noStackTrace(res.stderr);
    });

    it('refuses a weak TLS suite, an unknown suite and a bad TLS version, naming each key', async () => {
      const file = write('c.yaml', `server:\n  protocol: https\n  tls_min_version: TLSv1.1\n  tls_ciphers: "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA:BOGUS-SUITE"\n`);
      const res = await runCli(['config', 'validate', '-c', file], { cwd: tmp.dir });
      expect(res.code).to.equal(1);
      const lines = res.stderr.trim().split('\n');
      const ciphers = lines.find((l) => l.startsWith('callfs: server.tls_ciphers:'));
      expect(ciphers, res.stderr).to.be.a('string');
      expect(ciphers).to.include('ECDHE-ECDSA-AES128-SHA');
      expect(ciphers).to.include('BOGUS-SUITE');
      expect(lines.some((l) => l.startsWith('callfs: server.tls_min_version:')), res.stderr).to.equal(true);
      noStackTrace(res.stderr);
      const env = { CALLFS_SERVER_TLS_CIPHERS: 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384', CALLFS_SERVER_TLS_MIN_VERSION: 'TLSv1.3' };
      const good = await runCli(['config', 'validate'], { cwd: tmp.dir, env });
      expect(good.code, good.stderr).to.equal(0);
      expect(good.stdout).to.match(/tls_min_version: TLSv1\.3/);
    });

    it('gives one clear line for malformed YAML', async () => {
      const file = write('config.yaml', 'server:\n  listen_addr: [\n');
      const res = await runCli(['config', 'validate'], { cwd: tmp.dir });
      expect(res.code).to.equal(1);
      expect(res.stderr.trim().split('\n')).to.have.length(1);
      expect(res.stderr).to.include(file);
      expect(res.stderr).to.match(/malformed YAML/);
    });

    it('names the key of a wrong type in an environment variable', async () => {
      const res = await runCli(['config', 'validate'], { cwd: tmp.dir, env: { CALLFS_METADATA_STORE_POOL_SIZE: 'lots' } });
      expect(res.code).to.equal(1);
      expect(res.stderr).to.match(/^callfs: metadata_store\.pool_size: /m);
      noStackTrace(res.stderr);
    });

    it('reports a config file that does not exist', async () => {
      const res = await runCli(['config', 'validate', '-c', 'nope.yaml'], { cwd: tmp.dir });
      expect(res.code).to.equal(1);
      expect(res.stderr.trim()).to.equal('callfs: config file nope.yaml: no such file');
    });
  });

  describe('server', () => {
    it('refuses to start on an unreadable certificate with one clear line', async () => {
      const res = await runCli(['server'], { cwd: tmp.dir, env: { CALLFS_SERVER_CERT_FILE: join(tmp.dir, 'missing.crt'), CALLFS_SERVER_KEY_FILE: join(tmp.dir, 'missing.key') } });
      expect(res.code).to.equal(1);
      expect(res.stderr).to.match(/^callfs: server\.cert_file: .*missing\.crt: no such file$/m);
      noStackTrace(res.stderr);
    });

    it('refuses to start with one clear line when the metadata database is down', async () => {
      const res = await runCli(['server'], {
        cwd: tmp.dir,
        env: {
          CALLFS_METADATA_STORE_DSN: 'postgres://postgres@127.0.0.1:1/callfs',
          CALLFS_AUTH_API_KEYS: KEY,
          CALLFS_AUTH_INTERNAL_PROXY_SECRET: 'proxy-secret-0123456789',
          CALLFS_AUTH_SINGLE_USE_LINK_SECRET: 'link-secret-0123456789',
          CALLFS_SERVER_LISTEN_ADDR: '127.0.0.1:0',
          CALLFS_METRICS_LISTEN_ADDR: '',
          CALLFS_DLM_TYPE: 'local',
        },
      });
      expect(res.code).to.equal(1);
      const lines = res.stderr.trim().split('\n');
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(/^callfs: metadata store 127\.0\.0\.1:1\/callfs is unavailable/);
      noStackTrace(res.stderr);
    });

    it('finishes an in-flight upload on SIGTERM before exiting 0', async function () {
      this.timeout(120_000);
      const env = { CALLFS_SERVER_LISTEN_ADDR: '127.0.0.1:0', CALLFS_METRICS_LISTEN_ADDR: '', CALLFS_BACKEND_CAS_MODE: 'dir', CALLFS_AUTH_API_KEYS: KEY };
      const server = await startCliServer([], { cwd: tmp.dir, env });
      const https = await import('node:https');
      const u = new URL(`${server.url}/v1/files/slow.bin`);
      const total = 4 * 1024 * 1024;
      let status = 0;
      const done = new Promise<void>((resolve) => {
        const req = https.request({ method: 'PUT', hostname: u.hostname, port: u.port, path: u.pathname, rejectUnauthorized: false, headers: { authorization: `Bearer ${KEY}`, 'content-length': String(total) } }, (res) => {
          status = res.statusCode ?? 0;
          res.resume();
          res.on('end', () => resolve());
        });
        req.on('error', () => resolve());
        let sent = 0;
        const step = (): void => {
          if (sent >= total) return void req.end();
          sent += 256 * 1024;
          req.write(Buffer.alloc(256 * 1024, 1), () => setTimeout(step, 50));
        };
        step();
      });
      await new Promise((r) => setTimeout(r, 300));
      const exit = server.stop('SIGTERM');
      await done;
      expect(status).to.equal(201);
      expect(await exit).to.equal(0);
    });

    it('starts with no config at all, prints a generated key once, serves HTTPS, stops on SIGTERM, reuses its secrets', async function () {
      this.timeout(120_000);
      const env = { CALLFS_SERVER_LISTEN_ADDR: '127.0.0.1:0', CALLFS_METRICS_LISTEN_ADDR: '', CALLFS_BACKEND_CAS_MODE: 'dir' };
      const first = await startCliServer([], { cwd: tmp.dir, env });
      let key: string;
      try {
        const m = /Bearer ([A-Za-z0-9_-]{20,})"/.exec(first.output());
        expect(m, first.output()).not.to.equal(null);
        key = (m as RegExpExecArray)[1] as string;
        const ca = statSync(join(tmp.dir, 'data', 'tls', 'server.crt'));
        expect(ca.mode & 0o777).to.equal(0o600);
        expect(statSync(join(tmp.dir, 'data', 'secrets.json')).mode & 0o777).to.equal(0o600);
        const { readFileSync } = await import('node:fs');
        const pem = readFileSync(join(tmp.dir, 'data', 'tls', 'server.crt'));
        const health = await request(`${first.url}/health`, { ca: pem });
        expect(health.status).to.equal(200);
        expect((await request(`${first.url}/metrics`, { ca: pem, token: key })).status).to.equal(200);
        expect((await request(`${first.url}/metrics`, { ca: pem, token: 'x'.repeat(32) })).status).to.equal(401);
        // Admin verbs go through the running server (as the generated root user).
        const images = await runCli(['cas', 'images'], { cwd: tmp.dir, env: { ...env, CALLFS_SERVER_LISTEN_ADDR: `127.0.0.1:${new URL(first.url).port}` } });
        expect(images.code, images.stderr).to.equal(0);
        const listed = JSON.parse(images.stdout);
        expect(listed.mode).to.equal('dir');
        expect(listed.images[0]).to.include({ state: 'active' });
      } finally {
        expect(await first.stop('SIGTERM')).to.equal(0);
      }
      // With no server running they work on the store directly.
      const gc = await runCli(['cas', 'gc'], { cwd: tmp.dir, env });
      expect(gc.code, gc.stderr).to.equal(0);
      expect(JSON.parse(gc.stdout)).to.have.property('collected', 0);
      const second = await startCliServer([], { cwd: tmp.dir, env });
      try {
        expect(second.output()).not.to.include('generated an API key');
        expect((await request(`${second.url}/metrics`, { token: key })).status).to.equal(200);
      } finally {
        expect(await second.stop('SIGINT')).to.equal(0);
      }
    });
  });
});
