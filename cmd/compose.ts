import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { Settings } from '../lib/config/index.js';
import { tlsFiles, ensureSelfSignedCertificate } from '../lib/config/embedded.js';
import { parseListenAddr } from '../lib/config/formats.js';
import { createApp } from '../lib/http/app.js';
import { createHttpServer, listen, closeGracefully } from '../lib/http/server.js';
import { createMetrics, type Metrics } from '../lib/metrics/index.js';
import type { Logger } from '../lib/log/index.js';
import { createUserDirectory, usersFromConfig } from '../lib/auth/users.js';
import type { ReadinessChecks } from '../lib/http/readiness.js';

/**
 * The composition root: builds every component from the settings and wires
 * them together by hand. `callfs server` and the integration tests both start
 * CallFS through startCallfs().
 */
export interface RunningCallfs {
  /** Base URL of the main listener, e.g. https://127.0.0.1:8443 */
  url: string;
  port: number;
  /** Port of the unauthenticated metrics listener, or null when disabled. */
  metricsPort: number | null;
  metrics: Metrics;
  /** Graceful shutdown: stop accepting, finish in-flight requests up to the deadline, close stores. */
  close(): Promise<void>;
}

export interface StartOptions {
  settings: Settings;
  logger: Logger;
}

export async function startCallfs(options: StartOptions): Promise<RunningCallfs> {
  const { settings, logger } = options;
  const { config } = settings;
  const metrics = createMetrics();
  const users = createUserDirectory(usersFromConfig(config.auth));
  const closers: (() => Promise<void>)[] = [];
  const readiness: ReadinessChecks = {};

  let tls: { cert: Buffer; key: Buffer } | null = null;
  if (config.server.protocol === 'https') {
    const files = tlsFiles(settings);
    if (files.generated && (await ensureSelfSignedCertificate(files.certFile, files.keyFile))) {
      logger.info({ cert_file: files.certFile }, 'generated a self-signed TLS certificate');
    }
    tls = { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) };
  } else {
    logger.warn('server.protocol is http: traffic is NOT encrypted; use this only behind a TLS-terminating proxy');
  }

  const app = createApp({
    logger,
    metrics,
    authenticate: (header) => users.authenticate(header),
    readiness,
    tls: tls !== null,
  });
  const server = createHttpServer({ app, tls, readTimeoutMs: config.server.read_timeout, writeTimeoutMs: config.server.write_timeout });
  const addr = parseListenAddr(config.server.listen_addr) ?? { host: '', port: 8443 };
  const port = await listen(server, addr.host, addr.port);

  let metricsServer: http.Server | null = null;
  let metricsPort: number | null = null;
  const metricsAddr = config.metrics.listen_addr === '' ? null : parseListenAddr(config.metrics.listen_addr);
  if (metricsAddr !== null) {
    metricsServer = http.createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
    metricsPort = await listen(metricsServer, metricsAddr.host, metricsAddr.port);
  }

  const host = addr.host === '' || addr.host === '0.0.0.0' ? '127.0.0.1' : addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  const url = `${tls === null ? 'http' : 'https'}://${host}:${port}`;
  logger.info({ url, metrics_port: metricsPort, metadata: settings.metadataType, locks: settings.dlmType, instance_id: config.instance_discovery.instance_id }, 'CallFS is listening');

  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    metricsPort,
    metrics,
    close() {
      closing ??= (async () => {
        await closeGracefully(server, config.server.shutdown_timeout, logger);
        if (metricsServer !== null) await closeGracefully(metricsServer, 1000);
        for (const close of closers.reverse()) {
          try {
            await close();
          } catch (err) {
            logger.error({ err }, 'error while closing a component');
          }
        }
      })();
      return closing;
    },
  };
}
