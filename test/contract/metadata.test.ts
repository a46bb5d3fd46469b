import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { BACKEND_TYPES } from '../../lib/backends/registry.js';
import { createSilentLogger } from '../../lib/log/index.js';
import { createEmbeddedMetadataStore, createPostgresDriver, createPostgresMetadataStore, migrate } from '../../lib/metadata/index.js';
import type { Queryable, SqlDriver, Statement } from '../../lib/metadata/driver.js';
import { createPgliteDriver } from '../../lib/metadata/pglite-driver.js';
import type { MetadataStore } from '../../lib/metadata/types.js';
import { createMetrics, type Metrics } from '../../lib/metrics/index.js';
import { createMemoryMetadataStore } from '../fakes/memory-metadata-store.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { ensurePostgres, requireComponent } from '../support/services.js';
import { rejectionOf } from './backend-contract.js';
import { metadataStoreContract } from './metadata-contract.js';
import { DIR_ATTRS, dir, expectCode, file } from './metadata-helpers.js';

const logger = createSilentLogger();

let pgDatabase: TestDatabase | undefined;
metadataStoreContract('Postgres (pg)', {
  unavailable: () => ensurePostgres(),
  async open() {
    pgDatabase = await createTestDatabase();
    return createPostgresMetadataStore({ dsn: pgDatabase.dsn, logger, poolSize: 8, listPageSize: 7 });
  },
  async cleanup() {
    await pgDatabase?.drop();
  },
});

let embeddedDir: string | undefined;
metadataStoreContract('embedded (PGlite)', {
  unavailable: async () => null,
  async open() {
    embeddedDir = await mkdtemp(join(tmpdir(), 'callfs-pglite-'));
    return createEmbeddedMetadataStore({ dataDir: embeddedDir, logger, listPageSize: 7 });
  },
  async cleanup() {
    if (embeddedDir !== undefined) await rm(embeddedDir, { recursive: true, force: true });
  },
});

// The fake the engine and HTTP unit tests run on: it must keep the same contract.
metadataStoreContract('in memory (test fake)', {
  unavailable: async () => null,
  open: async () => createMemoryMetadataStore(),
  cleanup: async () => {},
});

const cacheCount = async (metrics: Metrics, result: string): Promise<number> =>
  (await metrics.metadataCache.get()).values.find((v) => v.labels.result === result)?.value ?? 0;

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Postgres metadata store across instances', function () {
  let db: TestDatabase | undefined;
  const stores: MetadataStore[] = [];
  let a: MetadataStore;
  let b: MetadataStore;
  let metricsB: Metrics;

  before(async function () {
    requireComponent(this, await ensurePostgres());
    db = await createTestDatabase();
    metricsB = createMetrics({ defaultMetrics: false });
    // Opened together: the second waits for the first one's migration and finds nothing to do.
    [a, b] = await Promise.all([
      createPostgresMetadataStore({ dsn: db.dsn, logger }),
      createPostgresMetadataStore({ dsn: db.dsn, logger, metrics: metricsB }),
    ]);
    stores.push(a, b);
  });

  after(async () => {
    try {
      await Promise.all(stores.map((s) => s.close()));
    } finally {
      await db?.drop();
    }
  });

  it('migrated once even though two instances opened concurrently', async () => {
    const client = new pg.Client({ connectionString: db?.dsn });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT version FROM callfs_migrations ORDER BY version');
      expect(rows.map((r: { version: number }) => r.version)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    } finally {
      await client.end();
    }
  });

  it('constrains inodes.backend to the backend registry, and keeps it so across restarts', async () => {
    const client = new pg.Client({ connectionString: db?.dsn });
    await client.connect();
    try {
      const defs = await client.query("SELECT conname, pg_get_constraintdef(c.oid) AS def FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid WHERE t.relname = 'inodes' AND pg_get_constraintdef(c.oid) LIKE '%backend%' AND conname LIKE 'inodes_backend%'");
      expect(defs.rows.map((r: { conname: string }) => r.conname)).to.deep.equal(['inodes_backend_known']);
      const named = [...String(defs.rows[0].def).matchAll(/'([^']*)'/g)].map((m) => m[1]).sort();
      expect(named).to.deep.equal([...BACKEND_TYPES].sort());
      const root = await client.query("SELECT id FROM inodes WHERE path = '/'");
      const insert = client.query("INSERT INTO inodes (path, parent_id, name, depth, type, mode, uid, gid, backend) VALUES ('/ftp-file', $1, 'ftp-file', 1, 'file', 420, 0, 0, 'ftp')", [root.rows[0].id]);
      await insert.then(() => expect.fail('an unknown backend was accepted'), (err: { code?: string }) => expect(err.code).to.equal('23514'));
    } finally {
      await client.end();
    }
  });

  it('never serves a stale entry on B right after a write on A', async () => {
    await a.create(file('/x/f', { size: 0 }), { parents: DIR_ATTRS });
    for (let i = 1; i <= 20; i++) {
      const hitsBefore = await cacheCount(metricsB, 'hit');
      await b.get('/x/f');
      await b.get('/x/f');
      expect(await cacheCount(metricsB, 'hit'), 'B serves from its cache').to.be.above(hitsBefore);
      const current = await a.get('/x/f');
      await a.update('/x/f', current?.version ?? 0, { size: i });
      expect((await b.get('/x/f'))?.size).to.equal(i);
    }
    await b.getChain('/x/f');
    await a.move('/x', '/y');
    expect(await b.get('/x/f')).to.equal(null);
    expect((await b.getChain('/x/f')).map((e) => e.path)).to.deep.equal(['/']);
    await b.get('/y/f');
    await a.delete('/y', { recursive: true });
    expect(await b.get('/y/f')).to.equal(null);
  });

  it('answers cachedAncestors from its cache alone: an uncached path\'s ancestors, which guard a create when one moves on another instance', async () => {
    await a.create(file('/ca/d/f', { size: 0 }), { parents: DIR_ATTRS });
    expect(await b.cachedAncestors('/ca/d/new'), 'nothing of it read yet').to.equal(null);
    await b.getChain('/ca/d/new');
    const read = await b.cachedAncestors('/ca/d/new');
    expect(read?.map((e) => e.path)).to.deep.equal(['/', '/ca', '/ca/d']);
    await b.getChain('/ca/d/f');
    expect(await b.cachedAncestors('/ca/d/f'), 'a path in the cache is known, not presumed').to.equal(null);
    await a.move('/ca/d', '/ca/e');
    // B may still hold the rows it read (no round trip waits for A's invalidation): a create decided on them is refused.
    expect(await b.createIfUnchanged(file('/ca/d/new', { size: 0 }), read ?? []), 'a create guarded by moved rows').to.equal(null);
    expect(await a.get('/ca/d/new')).to.equal(null);
    expect(await a.get('/ca/e/new')).to.equal(null);
    await eventually(async () => (await b.cachedAncestors('/ca/d/new')) === null);
    await b.getChain('/ca/e/new');
    expect((await b.cachedAncestors('/ca/e/new'))?.map((e) => [e.path, e.type])).to.deep.equal([['/', 'directory'], ['/ca', 'directory'], ['/ca/e', 'directory']]);
  });

  it('recovers the pool and the listener after every connection is killed', async function () {
    this.timeout(30_000);
    await a.create(dir('/r'));
    await b.get('/r');
    const admin = new pg.Client({ connectionString: db?.dsn });
    await admin.connect();
    try {
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    } finally {
      await admin.end();
    }
    await eventually(async () => (await a.ping().then(() => true)) && (await b.ping().then(() => true)));
    const r = await a.get('/r');
    await a.update('/r', r?.version ?? 0, { mode: 0o700 });
    expect((await b.get('/r'))?.mode).to.equal(0o700);
    // B's listener comes back and its cache serves hits again, still invalidated by A's writes.
    await eventually(async () => {
      const before = await cacheCount(metricsB, 'hit');
      await b.get('/r');
      await b.get('/r');
      return (await cacheCount(metricsB, 'hit')) > before;
    });
    const r2 = await a.get('/r');
    await a.update('/r', r2?.version ?? 0, { mode: 0o750 });
    expect((await b.get('/r'))?.mode).to.equal(0o750);
  });
});

describe('Postgres metadata store when the database is down', () => {
  it('fails to open with SERVICE_UNAVAILABLE naming the host, quickly, without the password', async () => {
    const port = await closedPort();
    const started = Date.now();
    const err = await expectCode(createPostgresMetadataStore({ dsn: `postgres://callfs:s3cret-pw@127.0.0.1:${port}/meta`, logger }), 'SERVICE_UNAVAILABLE');
    expect(Date.now() - started).to.be.below(3000);
    expect(err.message).to.include(`127.0.0.1:${port}`);
    expect(err.message).to.not.include('s3cret-pw');
  });
});

describe('embedded metadata store', () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'callfs-pglite-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps its data across reopen and refuses a second opener of the same directory', async () => {
    const first = await createEmbeddedMetadataStore({ dataDir, logger });
    try {
      await first.create(file('/kept', { size: 5 }));
      await expectCode(createEmbeddedMetadataStore({ dataDir, logger }), 'SERVICE_UNAVAILABLE');
    } finally {
      await first.close();
    }
    const second = await createEmbeddedMetadataStore({ dataDir, logger });
    try {
      expect((await second.get('/kept'))?.size).to.equal(5);
    } finally {
      await second.close();
    }
  });

  it('isolates concurrent transactions on its single connection', async () => {
    const store = await createEmbeddedMetadataStore({ dataDir, logger });
    try {
      const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
      const failing = store.transaction(async (tx) => {
        await tx.create(dir('/one'));
        await sleep(30);
        throw new Error('roll back');
      });
      const succeeding = store.transaction(async (tx) => {
        await tx.create(dir('/two'));
        await sleep(30);
      });
      const plain = store.create(dir('/three'));
      await Promise.allSettled([failing, succeeding, plain]);
      expect(await store.get('/one')).to.equal(null);
      expect(await store.get('/two')).to.not.equal(null);
      expect(await store.get('/three')).to.not.equal(null);
      // Using the store instead of the transaction inside it would wait for itself forever: refused instead.
      await expectCode(store.transaction(() => store.get('/not-cached')), 'INTERNAL_ERROR');
    } finally {
      await store.close();
    }
  });
});

describe('in-memory metadata store (test fake)', () => {
  it('runs one transaction at a time, and outside one sees only committed rows', async () => {
    const store = createMemoryMetadataStore();
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const first = store.transaction(async (tx) => {
      const one = await tx.create(dir('/one'));
      entered();
      await gate;
      await tx.update('/one', one.version, { mode: 0o700 });
    });
    await inside;
    expect(await store.get('/one'), 'not committed yet').to.equal(null);
    // Started while the first is open: it must read what the first committed, not what was there when it was called.
    const second = store.transaction(async (tx) => (await tx.get('/one'))?.mode);
    const plain = store.create(dir('/one/two'));
    release();
    await first;
    expect(await second).to.equal(0o700);
    expect((await plain).path).to.equal('/one/two');
  });

  it('refuses the store from inside its own transaction instead of waiting for itself', async () => {
    const store = createMemoryMetadataStore();
    await expectCode(store.transaction(() => store.create(dir('/x'))), 'INTERNAL_ERROR');
    await expectCode(store.transaction(() => store.get('/')), 'INTERNAL_ERROR');
    expect(await store.get('/x')).to.equal(null);
  });

  it('answers SERVICE_UNAVAILABLE once closed', async () => {
    const store = createMemoryMetadataStore();
    await store.ping();
    await store.close();
    await expectCode(store.ping(), 'SERVICE_UNAVAILABLE');
    await expectCode(store.get('/'), 'SERVICE_UNAVAILABLE');
    await expectCode(store.create(dir('/x')), 'SERVICE_UNAVAILABLE');
  });
});

describe('Postgres driver: named statements', function () {
  let db: TestDatabase | undefined;
  before(async function () {
    requireComponent(this, await ensurePostgres());
    db = await createTestDatabase();
  });
  after(async () => {
    await db?.drop();
  });

  it('still plans each run with its values: a path lookup first run on a new install uses the index once the namespace has grown', async () => {
    const driver = createPostgresDriver({ dsn: db!.dsn, logger, poolSize: 1 });
    try {
      await migrate(driver);
      await driver.query("INSERT INTO inodes (path, parent_id, name, depth, type, mode, uid, gid) SELECT '/a', id, 'a', 1, 'directory', 493, 0, 0 FROM inodes WHERE path = '/'");
      // getChain's statement. More than five runs: PostgreSQL's point for switching to a cached
      // generic plan, which for a table of two rows is a sequential scan.
      const lookup = 'SELECT id FROM inodes WHERE path = ANY($1::text[])';
      for (let i = 0; i < 8; i++) expect(await driver.query(lookup, [['/', '/a', '/a/b']])).to.have.length(2);
      await driver.query(
        "INSERT INTO inodes (path, parent_id, name, depth, type, mode, uid, gid) SELECT '/a/' || g, (SELECT id FROM inodes WHERE path = '/a'), g::text, 2, 'file', 420, 0, 0 FROM generate_series(1, $1::int) g",
        [5000],
      );
      const seqScans = async (tx: Queryable): Promise<number> =>
        Number((await tx.query<{ seq_scan: string }>("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'inodes'"))[0]?.seq_scan);
      const added = await driver.transaction(async (tx) => {
        const before = await seqScans(tx);
        for (let i = 1; i <= 3; i++) expect(await tx.query(lookup, [['/', '/a', `/a/${i}`]])).to.have.length(3);
        return (await seqScans(tx)) - before;
      });
      expect(added, 'sequential scans of the grown table by three lookups').to.equal(0);
    } finally {
      await driver.close();
    }
  });
});

describe('driver scripts (several statements, one transaction)', function () {
  let db: TestDatabase | undefined;
  let dataDir: string | undefined;
  after(async () => {
    await db?.drop();
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  });

  const drivers: Array<[string, (ctx: Mocha.Context) => Promise<SqlDriver>]> = [
    ['postgres', async (ctx) => {
      requireComponent(ctx, await ensurePostgres());
      db ??= await createTestDatabase();
      // One connection: a script that failed must leave it usable, not inside an aborted transaction.
      return createPostgresDriver({ dsn: db.dsn, logger, poolSize: 1 });
    }],
    ['pglite', async () => {
      dataDir ??= await mkdtemp(join(tmpdir(), 'callfs-pglite-script-'));
      return createPgliteDriver({ dataDir });
    }],
  ];

  for (const [name, open] of drivers) {
    it(`${name}: returns each statement's rows, and a failing statement rolls the whole script back`, async function () {
      const driver = await open(this);
      try {
        await driver.query('CREATE TABLE IF NOT EXISTS script_t (k text PRIMARY KEY, n integer)');
        const odd = `it's a \\ "quoted" $1 {x,y}`;
        const rows = await driver.script([
          { sql: 'INSERT INTO script_t (k, n) VALUES ($1::text, $2::integer) RETURNING k, n', params: [odd, -7] },
          { sql: 'SELECT count(*)::int AS c FROM script_t WHERE k = ANY($1::text[])', params: [[odd, 'none']] },
        ]);
        expect(rows).to.deep.equal([[{ k: odd, n: -7 }], [{ c: 1 }]]);

        const failure = await rejectionOf(driver.script([
          { sql: 'INSERT INTO script_t (k, n) VALUES ($1::text, $2::integer)', params: ['second', 1] },
          { sql: 'INSERT INTO script_t (k, n) VALUES ($1::text, $2::integer)', params: [odd, 2] },
        ]));
        expect((failure as { code?: string } | undefined)?.code, 'unique violation').to.equal('23505');
        expect(await driver.query('SELECT k, n FROM script_t ORDER BY k')).to.deep.equal([{ k: odd, n: -7 }]);

        // A statement after the failing one, never run, runs in the next script (on Postgres, each
        // connection parses a script's statements once: that one was sent but never parsed).
        const later: Statement = { sql: 'SELECT $1::text AS later', params: ['after the failure'] };
        const stopped = await rejectionOf(driver.script([{ sql: 'INSERT INTO script_t (k, n) VALUES ($1::text, $2::integer)', params: [odd, 3] }, later]));
        expect((stopped as { code?: string } | undefined)?.code, 'unique violation').to.equal('23505');
        expect(await driver.script([later])).to.deep.equal([[{ later: 'after the failure' }]]);

        // One transaction: what the first statement sets for the transaction, the next one sees, and nothing after the script does.
        const set: Statement = { sql: "SELECT set_config('callfs.script_test', $1::text, true) AS s", params: ['x'] };
        const read: Statement = { sql: "SELECT coalesce(current_setting('callfs.script_test', true), '') AS v", params: [] };
        expect(await driver.script([set, read])).to.deep.equal([[{ s: 'x' }], [{ v: 'x' }]]);
        expect(await driver.script([read])).to.deep.equal([[{ v: '' }]]);
      } finally {
        await driver.query('DROP TABLE IF EXISTS script_t').catch(() => undefined);
        await driver.close();
      }
    });
  }
});
