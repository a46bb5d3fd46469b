import { expect } from 'chai';
import tls from 'node:tls';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { startTestServer, type TestServer } from '../support/callfs.js';
import { tempDir } from '../support/tmp.js';

interface Handshake {
  /** The negotiated protocol and suite, or the error code when the handshake failed. */
  protocol?: string;
  cipher?: string;
  error?: string;
  /** The status line of GET /health over the connection, when it came up. */
  status?: string;
}

/** One TLS connection that offers only what it is given, then GET /health over it. */
function connect(url: string, options: tls.ConnectionOptions): Promise<Handshake> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const result: Handshake = {};
    let text = '';
    const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false, ...options }, () => {
      result.protocol = socket.getProtocol() ?? '';
      result.cipher = socket.getCipher().name;
      socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => (result.error ??= err.code ?? err.message));
    socket.on('close', () => {
      if (text !== '') result.status = text.split('\r\n')[0];
      resolve(result);
    });
  });
}

const tls12 = (ciphers: string): tls.ConnectionOptions => ({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers });

function expectRefused(h: Handshake, what: string): void {
  expect(h.protocol, `${what}: the handshake succeeded with ${h.cipher}`).to.equal(undefined);
  expect(h.error, what).to.be.a('string');
}

function expectServed(h: Handshake, protocol: string, cipher?: string): void {
  expect(h.error, `handshake failed: ${h.error}`).to.equal(undefined);
  expect(h.protocol).to.equal(protocol);
  if (cipher !== undefined) expect(h.cipher).to.equal(cipher);
  expect(h.status).to.equal('HTTP/1.1 200 OK');
}

describe('TLS policy of the main listener', () => {
  describe('the defaults, with the generated EC certificate', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer();
    });
    after(async () => {
      await server?.stop();
    });

    it('refuses a TLS 1.2 client that offers only a CBC/SHA-1 suite', async () => {
      expectRefused(await connect(server.url, tls12('ECDHE-ECDSA-AES128-SHA')), 'ECDHE-ECDSA-AES128-SHA');
      expectRefused(await connect(server.url, tls12('ECDHE-ECDSA-AES256-SHA384')), 'ECDHE-ECDSA-AES256-SHA384');
    });

    it('serves TLS 1.2 with ECDHE and AES-GCM or ChaCha20-Poly1305, and TLS 1.3', async () => {
      expectServed(await connect(server.url, tls12('ECDHE-ECDSA-AES128-GCM-SHA256')), 'TLSv1.2', 'ECDHE-ECDSA-AES128-GCM-SHA256');
      expectServed(await connect(server.url, tls12('ECDHE-ECDSA-AES256-GCM-SHA384')), 'TLSv1.2', 'ECDHE-ECDSA-AES256-GCM-SHA384');
      expectServed(await connect(server.url, tls12('ECDHE-ECDSA-CHACHA20-POLY1305')), 'TLSv1.2', 'ECDHE-ECDSA-CHACHA20-POLY1305');
      expectServed(await connect(server.url, {}), 'TLSv1.3');
    });

    it('answers a client renegotiation with an alert and drops that connection; other clients are served', async () => {
      const { hostname, port } = new URL(server.url);
      const outcome = await new Promise<{ renegotiated: boolean; error?: string }>((resolve) => {
        const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false, maxVersion: 'TLSv1.2' }, () => {
          socket.renegotiate({ rejectUnauthorized: false }, (err) => {
            if (err === null || err === undefined) {
              socket.destroy();
              resolve({ renegotiated: true });
            }
          });
        });
        let error: string | undefined;
        socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code));
        socket.on('close', () => resolve({ renegotiated: false, ...(error === undefined ? {} : { error }) }));
      });
      expect(outcome.renegotiated, 'the server renegotiated').to.equal(false);
      expect(outcome.error).to.equal('ERR_SSL_NO_RENEGOTIATION');
      expectServed(await connect(server.url, tls12('ECDHE-ECDSA-AES128-GCM-SHA256')), 'TLSv1.2');
    });
  });

  describe('an RSA certificate an operator brings', () => {
    let server: TestServer;
    let tmp: ReturnType<typeof tempDir>;
    before(async () => {
      tmp = tempDir('callfs-rsa-');
      const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'rsa', keySize: 2048, algorithm: 'sha256' });
      writeFileSync(join(tmp.dir, 'rsa.crt'), pems.cert);
      writeFileSync(join(tmp.dir, 'rsa.key'), pems.private, { mode: 0o600 });
      server = await startTestServer({ server: { cert_file: join(tmp.dir, 'rsa.crt'), key_file: join(tmp.dir, 'rsa.key') } });
    });
    after(async () => {
      await server?.stop();
      tmp?.remove();
    });

    it('is served with the default suites: ECDHE-RSA with AES-GCM or ChaCha20-Poly1305, and TLS 1.3', async () => {
      expectServed(await connect(server.url, tls12('ECDHE-RSA-AES128-GCM-SHA256')), 'TLSv1.2', 'ECDHE-RSA-AES128-GCM-SHA256');
      expectServed(await connect(server.url, tls12('ECDHE-RSA-CHACHA20-POLY1305')), 'TLSv1.2', 'ECDHE-RSA-CHACHA20-POLY1305');
      expectServed(await connect(server.url, {}), 'TLSv1.3');
    });

    it('refuses CBC suites and static-RSA key exchange, even with AES-GCM', async () => {
      expectRefused(await connect(server.url, tls12('ECDHE-RSA-AES128-SHA')), 'ECDHE-RSA-AES128-SHA');
      expectRefused(await connect(server.url, tls12('AES128-GCM-SHA256')), 'AES128-GCM-SHA256');
      expectRefused(await connect(server.url, tls12('AES256-SHA')), 'AES256-SHA');
    });
  });

  describe('server.tls_min_version and server.tls_ciphers', () => {
    it('TLSv1.3 refuses a TLS 1.2 client', async () => {
      const server = await startTestServer({ server: { tls_min_version: 'TLSv1.3' } });
      try {
        expectRefused(await connect(server.url, tls12('ECDHE-ECDSA-AES128-GCM-SHA256')), 'TLS 1.2');
        expectServed(await connect(server.url, {}), 'TLSv1.3');
      } finally {
        await server.stop();
      }
    });

    it('serves only the configured TLS 1.2 suites', async () => {
      const server = await startTestServer({ server: { tls_ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' } });
      try {
        expectRefused(await connect(server.url, tls12('ECDHE-ECDSA-AES128-GCM-SHA256')), 'a suite left out of tls_ciphers');
        expectServed(await connect(server.url, tls12('ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384')), 'TLSv1.2', 'ECDHE-ECDSA-AES256-GCM-SHA384');
        expectServed(await connect(server.url, {}), 'TLSv1.3');
      } finally {
        await server.stop();
      }
    });
  });
});
