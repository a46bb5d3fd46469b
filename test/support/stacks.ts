import { ensurePostgres, ensureRedis, loopMountsAvailable, requireComponent } from './services.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';
import { merge, startTestServer, type TestServer } from './callfs.js';

/**
 * The two ways CallFS runs, for suites that must pass on both:
 * - embedded: PGlite, in-process locks, CAS in plain directories;
 * - cluster: a real Postgres database, Redlock on the real Redis, CAS in real ext4 loop images.
 */
export interface Stack {
  name: string;
  /** Skip (or fail under CI) when a component is missing. Call from a before hook. */
  require(ctx: Mocha.Context): Promise<void>;
  /** Start a server of this stack; extra config is merged in. */
  start(extra?: Record<string, any>): Promise<TestServer>;
}

export const embeddedStack: Stack = {
  name: 'embedded (PGlite, local locks, dir CAS)',
  async require() {},
  start: (extra = {}) => startTestServer(extra),
};

export const clusterStack: Stack = {
  name: 'cluster (Postgres, Redlock, loop-image CAS)',
  async require(ctx) {
    requireComponent(ctx, await ensurePostgres());
    requireComponent(ctx, await ensureRedis());
    requireComponent(ctx, loopMountsAvailable());
  },
  async start(extra = {}) {
    const db: TestDatabase = await createTestDatabase('callfs_api');
    try {
      const server = await startTestServer(
        merge(
          {
            metadata_store: { dsn: db.dsn, pool_size: 8 },
            dlm: { redis_addr: '127.0.0.1:6379' },
            auth: { internal_proxy_secret: 'proxy-secret-0123456789abcdef', single_use_link_secret: 'link-secret-0123456789abcdef' },
            backend: { cas: { mode: 'loop', image_size: '256MiB', min_free_bytes: '16MiB', min_free_inodes: 1000 } },
          },
          extra,
        ),
      );
      const stop = server.stop.bind(server);
      return Object.assign(server, {
        async stop() {
          try {
            await stop();
          } finally {
            await db.drop();
          }
        },
      });
    } catch (err) {
      await db.drop();
      throw err;
    }
  },
};
