import https from 'node:https';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { Settings } from '../lib/config/index.js';
import { tlsFiles } from '../lib/config/embedded.js';
import { parseListenAddr } from '../lib/config/formats.js';
import { usersFromConfig } from '../lib/auth/users.js';
import { openMetadataStore } from './stores.js';
import { casOptionsFromSettings, createCasBackend } from '../lib/backends/cas/index.js';
import { createMetrics } from '../lib/metrics/index.js';
import { createSilentLogger } from '../lib/log/index.js';
import { CallfsError } from '../lib/errors.js';

export type CasVerb = 'images' | 'scrub' | 'gc';

const ROUTES: Record<CasVerb, { method: string; path: string }> = {
  images: { method: 'GET', path: '/v1/cas/images' },
  scrub: { method: 'POST', path: '/v1/cas/scrub' },
  gc: { method: 'POST', path: '/v1/cas/gc' },
};

/** Ask the running server (as a configured root user). Null when no server answers or no root key is configured. */
function askServer(settings: Settings, verb: CasVerb): Promise<unknown | null> {
  const { config } = settings;
  const root = usersFromConfig(config.auth).find((u) => u.uid === 0);
  // Without a root key the server cannot be asked; working directly is still possible when it is not running.
  if (root === undefined) return Promise.resolve(null);
  const addr = parseListenAddr(config.server.listen_addr) ?? { host: '', port: 8443 };
  const host = addr.host === '' || addr.host === '0.0.0.0' || addr.host === '::' ? '127.0.0.1' : addr.host;
  const tls = config.server.protocol === 'https' ? tlsFiles(settings) : null;
  return new Promise((resolve, reject) => {
    const { method, path } = ROUTES[verb];
    const options = { method, hostname: host, port: addr.port, path, headers: { authorization: `Bearer ${root.apiKey}` } };
    const req = tls === null
      ? http.request(options)
      // The server's own certificate (self-signed on the embedded default) is the one to trust here.
      : https.request({ ...options, ca: readFileSync(tls.certFile), servername: 'localhost', checkServerIdentity: () => undefined });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        const body = JSON.parse(text) as { code?: string; message?: string };
        if (res.statusCode !== 200) reject(new CallfsError('BAD_REQUEST', `the server answered ${res.statusCode}: ${body.message ?? text}`));
        else resolve(body);
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' ? resolve(null) : reject(err)));
    req.end();
  });
}

/** No server running: open the store and the CAS here (the CAS root lock keeps this exclusive), run, close. */
async function runOffline(settings: Settings, verb: CasVerb): Promise<unknown> {
  const logger = createSilentLogger();
  const metrics = createMetrics({ defaultMetrics: false });
  const store = await openMetadataStore(settings, { logger });
  try {
    // The server's options exactly (image size, watermarks, grace), less the background jobs: this process runs one verb and exits.
    const cas = await createCasBackend({ ...casOptionsFromSettings(settings, { index: store, logger, metrics }), gcIntervalMs: 0, scrubIntervalMs: 0 });
    try {
      if (verb === 'gc') return await cas.gc();
      if (verb === 'scrub') return await cas.scrub();
      return { mode: cas.mode, images: await cas.images() };
    } finally {
      await cas.close();
    }
  } finally {
    await store.close();
  }
}

/** `callfs cas images|scrub|gc`: through the running server when there is one, else directly. */
export async function casCommand(settings: Settings, verb: CasVerb): Promise<string> {
  const answer = (await askServer(settings, verb)) ?? (await runOffline(settings, verb));
  return JSON.stringify(answer, null, 2);
}
