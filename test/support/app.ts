import type { Router } from '@koa/router';
import { createUserDirectory } from '../../lib/auth/users.js';
import { CallfsError } from '../../lib/errors.js';
import { createApp } from '../../lib/http/app.js';
import { closeGracefully, createHttpServer, listen } from '../../lib/http/server.js';
import type { Check, ReadinessChecks } from '../../lib/http/readiness.js';
import { directoriesRoutes } from '../../lib/http/routes/directories.js';
import { filesRoutes } from '../../lib/http/routes/files.js';
import { internalRoutes } from '../../lib/http/routes/internal.js';
import { requirePeer } from '../../lib/http/middleware/auth.js';
import type { RequestState } from '../../lib/http/state.js';
import { createSilentLogger } from '../../lib/log/index.js';
import { createMetrics, type Metrics } from '../../lib/metrics/index.js';
import { alice, bob, createTestEngine, root, type EngineUnderTest, type TestEngineOptions } from './engine.js';

/**
 * The Koa app of lib/http as cmd/compose.ts assembles it, on the engine of
 * test/support/engine.ts (in-memory store, locks and backend), served by
 * lib/http/server.ts without TLS on a loopback port: unit tests of the HTTP
 * layer without Postgres, certificates or a data directory. The app is
 * assembled here and only here, so that a change to its parts is made in
 * one place.
 *
 * Requests go through the real `app.callback()` and Node's HTTP parser, with
 * test/support/http.ts `request`, which speaks HTTP as well as HTTPS: no
 * supertest needed, and the server is the one production runs (its
 * lingering close of refused bodies included).
 */
export interface AppUnderTest extends EngineUnderTest {
  /** http://127.0.0.1:<port> */
  url: string;
  metrics: Metrics;
  close(): Promise<void>;
}

export interface TestAppOptions extends TestEngineOptions {
  /** Whether the app believes it is served over TLS (Strict-Transport-Security). Default true, as in production. */
  tls?: boolean;
  /** The internal proxy secret: peers present it as Bearer on the internal blob routes (mounted when given). */
  peerSecret?: string;
  /** Peers' readiness checks, by instance id. */
  peers?: Record<string, Check>;
  /** Routers mounted after the feature routes (tests that need a route the API does not have). */
  routers?: Array<Router<RequestState>>;
}

/** API keys of the test users (root, alice, bob of test/support/engine.ts). */
export const API_KEYS = {
  root: 'unit-root-key-0123456789',
  alice: 'unit-alice-key-0123456789',
  bob: 'unit-bob-key-0123456789',
} as const;

export async function startTestApp(options: TestAppOptions = {}): Promise<AppUnderTest> {
  const parts = createTestEngine(options);
  const users = createUserDirectory([
    { ...root, apiKey: API_KEYS.root },
    { ...alice, apiKey: API_KEYS.alice },
    { ...bob, apiKey: API_KEYS.bob },
  ]);
  const metrics = createMetrics({ defaultMetrics: false });
  const nameOf = (uid: number): string => users.byUid(uid)?.name ?? String(uid);
  const uidOf = (owner: unknown): number => {
    if (typeof owner === 'number' && Number.isInteger(owner) && owner >= 0) return owner;
    const user = typeof owner === 'string' ? users.byName(owner) : undefined;
    if (user === undefined) throw new CallfsError('BAD_REQUEST', '"owner" must be a known user name or a numeric uid');
    return user.uid;
  };
  const readiness: ReadinessChecks = {
    metadata: () => parts.store.ping(),
    locks: () => parts.deps.locks.check(),
    backends: { cas: () => parts.backend.check() },
    ...(options.peers === undefined ? {} : { peers: options.peers }),
  };
  const app = createApp({
    logger: createSilentLogger(),
    metrics,
    authenticate: (header) => users.authenticate(header),
    readiness,
    tls: options.tls ?? true,
    routers: (requireAuth) => [
      filesRoutes({ engine: parts.engine, nameOf, uidOf, requireAuth, externalUrl: 'https://callfs.test' }),
      directoriesRoutes({ engine: parts.engine, nameOf, requireAuth }),
      ...(options.peerSecret === undefined ? [] : [internalRoutes({ engine: parts.engine, requirePeer: requirePeer(options.peerSecret) })]),
      ...(options.routers ?? []),
    ],
  });
  const server = createHttpServer({ app, tls: null, readTimeoutMs: 30_000, writeTimeoutMs: 30_000 });
  const port = await listen(server, '127.0.0.1', 0);
  return {
    ...parts,
    url: `http://127.0.0.1:${port}`,
    metrics,
    async close() {
      await closeGracefully(server, 0);
      await parts.close();
    },
  };
}
