/**
 * The benchmark suite of BENCH.md: `npm run bench` (build, then this).
 *   node dist/bench/run.js [--only a,b] [--seconds 8] [--warmup 2] [--cpu-prof] [--node-arg=<flag> …]
 *                          [--pg postgres://postgres@127.0.0.1:5432/postgres] [--redis 127.0.0.1:6379]
 * Installs nginx/wrk/pgbench if missing, starts CallFS and the baselines on
 * the server core, runs the scenarios from the load core, prints one table
 * and writes it (Markdown and JSON) to bench/results/. Everything it starts
 * or changes is undone at the end, on failure and on Ctrl-C.
 * Not a test: it never fails on a time; it exits non-zero only when it could not run.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createCleanup } from './harness/cleanup.js';
import { describeEnvironment, loadAverage } from './harness/environment.js';
import { ensureTools } from './harness/install.js';
import { startMonitors } from './harness/monitors.js';
import { pinSelfToLoadCore } from './harness/pinning.js';
import { pinServices } from './harness/services.js';
import { createTempDir, removeTempDir } from './harness/tempdir.js';
import { createBenchTls, negotiated } from './harness/tls.js';
import { measureCeilings, type Ceilings } from './load/ceiling.js';
import { createHttpClient } from './load/http.js';
import { writePgbenchScripts } from './load/pgbench.js';
import type { ScenarioResult } from './report/types.js';
import { renderReport, writeReport } from './report/write.js';
import type { Suite } from './scenarios/context.js';
import { SCENARIOS } from './scenarios/index.js';
import { seedCallfs, seedStatic } from './scenarios/seed.js';
import { startBNodeTarget } from './targets/b-node.js';
import { startCallfsTarget } from './targets/callfs.js';
import { startNginxTarget } from './targets/nginx.js';
import { createScratchDatabase } from './targets/postgres.js';
import { SEED } from './targets/types.js';

const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const CEILING_SECONDS = 3;
/** A scenario that takes longer is reported as failed and the suite moves on (its children are stopped at the end). */
const SCENARIO_DEADLINE_MS = 240_000;

function withDeadline<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    seconds: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    'cpu-prof': { type: 'boolean', default: false },
    /** Extra node flags for the CallFS server (repeatable), e.g. --node-arg=--trace-gc. */
    'node-arg': { type: 'string', multiple: true, default: [] },
    pg: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    redis: { type: 'string', default: '127.0.0.1:6379' },
  },
});

const log = (line: string): void => void process.stdout.write(line + '\n');

async function main(): Promise<number> {
  const selected = args.only === undefined ? SCENARIOS : SCENARIOS.filter((s) => args.only?.split(',').includes(s.name));
  if (selected.length === 0) throw new Error(`--only matches no scenario; they are: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  if (process.getuid?.() !== 0) throw new Error('run as root: CallFS runs with the loop-image CAS (backend.cas.mode loop)');
  const started = Date.now();
  const cleanup = createCleanup(log);
  const abort = new AbortController();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    log(`\n${signal}: stopping and cleaning up…`);
    abort.abort();
    void cleanup.run().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const tools = await ensureTools(log);
    await pinSelfToLoadCore();
    const dir = createTempDir();
    cleanup.add(`remove ${dir}`, () => removeTempDir(dir, log));
    log(`temp dir ${dir}`);
    const tls = await createBenchTls(join(dir, 'tls'));
    const db = await createScratchDatabase(args.pg, cleanup);
    const pgVersion = (await db.pool.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?';

    const servicePids = await pinServices(db.postmasterPid, args.redis, cleanup, log);
    log('environment (pg_test_fsync for a few seconds)…');
    const environment = await describeEnvironment(tools, dir, pgVersion);

    log('seeding the static root…');
    const staticRoot = join(dir, 'static');
    await seedStatic(staticRoot);
    const smallBody = join(dir, 'body-4k.bin');
    writeFileSync(smallBody, randomBytes(SEED.smallSize));

    log('starting CallFS, nginx and B-node on CPU 1…');
    mkdirSync(RESULTS_DIR, { recursive: true });
    const profileDir = args['cpu-prof'] ? join(RESULTS_DIR, `prof-${new Date().toISOString().replace(/[:.]/g, '-')}`) : undefined;
    const callfs = await startCallfsTarget({ dir: join(dir, 'callfs'), tls, dsn: db.dsn, redisAddr: args.redis, nodeArgs: args['node-arg'], logFile: join(RESULTS_DIR, 'callfs-output.log'), cleanup, log, ...(profileDir === undefined ? {} : { cpuProfDir: profileDir }) });
    const nginx = await startNginxTarget({ nginx: tools.nginx, dir: join(dir, 'nginx'), staticRoot, tls, cleanup });
    const node = await startBNodeTarget({ dir: join(dir, 'b-node'), staticRoot, tls, dsn: db.dsn, cleanup });
    for (const t of [callfs, nginx, node]) environment.negotiated[t.name] = await negotiated(t.port, tls.client);
    const { rss, cpu } = startMonitors([callfs, nginx, node], servicePids, cleanup);

    const callfsMetrics = createHttpClient({ port: callfs.port, tls: tls.client, authorization: callfs.authorization ?? '', maxSockets: 1 });
    cleanup.add('close the metrics client', () => callfsMetrics.close());
    let ceilings: Promise<Ceilings> | null = null;
    const suite: Suite = {
      tools,
      tls,
      dir,
      staticRoot,
      redisAddr: args.redis,
      callfs,
      nginx,
      node,
      db,
      pgScripts: writePgbenchScripts(dir, SEED.smallCount),
      smallBody,
      largeBody: randomBytes(64 * 1024 * 1024),
      seconds: Number(args.seconds),
      warmupSeconds: Number(args.warmup),
      rss,
      cpu,
      callfsMetrics,
      cleanup,
      signal: abort.signal,
      log,
      done: new Map(),
      ceilings: () => (ceilings ??= (log('B-ceil: 4 × 3 s micro-benchmarks…'), measureCeilings(CEILING_SECONDS, tls, tools.wrk, cleanup, log))),
      smallSeeded: false,
      windows: [],
    };
    log('seeding CallFS (64 × 1 MiB, 1 × 256 MiB)…');
    await seedCallfs(suite);

    const results: ScenarioResult[] = [];
    for (const scenario of selected) {
      const index = SCENARIOS.indexOf(scenario) + 1;
      log(`\n[${index}] ${scenario.name}`);
      try {
        const result = await withDeadline(scenario.run(suite, index), SCENARIO_DEADLINE_MS, `${scenario.name} did not finish within ${SCENARIO_DEADLINE_MS / 1000} s`);
        results.push(result);
        suite.done.set(scenario.name, result);
      } catch (err) {
        if (abort.signal.aborted) throw err;
        log(`  FAILED: ${err instanceof Error ? err.message : String(err)}`);
        for (const t of [callfs, nginx, node]) if (!t.proc.alive()) log(`  ${t.name} is not running any more; its last output:\n${t.proc.tail()}`);
        results.push({ index, name: scenario.name, measurements: [], gates: [], notes: [`scenario failed: ${err instanceof Error ? err.message : String(err)}`], valid: false });
      }
    }

    environment.load.end = loadAverage();
    const report = {
      results,
      environment,
      peakRssMiB: Object.fromEntries([callfs, nginx, node].map((t) => [t.name, Math.round((rss.peak(t.name) ?? 0) / 2 ** 20)])),
      seconds: Math.round((Date.now() - started) / 1000),
      extra: { options: args, ceilings: ceilings === null ? null : await ceilings, profileDir: profileDir ?? null, callfsWindows: suite.windows },
    };
    const markdown = renderReport(report);
    log(`\n${markdown}`);
    writeReport(RESULTS_DIR, report, markdown);
    log(`written: ${join(RESULTS_DIR, 'latest.md')} and latest.json${profileDir === undefined ? '' : `; CPU profile (on CallFS exit) in ${profileDir}`}`);
    return 0;
  } finally {
    await cleanup.run();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
