import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/support/ports.js';
import { createHttpClient, expectStatus } from '../load/http.js';
import { runPutStreams } from '../load/put-stream.js';
import { check, finishScenario, ratio } from '../report/gates.js';
import type { Measurement, ScenarioResult } from '../report/types.js';
import { newClusterKeys, startCallfsTarget, type CallfsTarget } from '../targets/callfs.js';
import type { Scenario, Suite } from './context.js';
import { measured, measureWrk } from './measure.js';

/**
 * Scenario 9: replication (backend.cas.replicas 2). Two more CallFS
 * instances, peers of each other, on the same server core, the suite's
 * database and Redis: 64 MiB PUTs acknowledged with two copies, as a ratio to
 * the one-copy put-64m-unique of the same run; then 1 MiB GETs through the
 * second instance of files written through the first, with the first one
 * stopped (served by the replica). Both instances share the one server core,
 * so a copy costs that core what the first one did: on this machine the
 * ratio measures the extra CPU of a second copy, not the network fan-out a
 * cluster of machines would see.
 */

const RESULTS_DIR = fileURLToPath(new URL('../../../bench/results/', import.meta.url));
const FILES = 12;
const CONCURRENCY = 2;
const READ_FILES = 32;
const MiB = 1024 * 1024;

interface Pair {
  a: CallfsTarget;
  b: CallfsTarget;
}

async function startPair(suite: Suite): Promise<Pair> {
  const keys = newClusterKeys();
  const ports = { 'bench-ra': await freePort(), 'bench-rb': await freePort() };
  const peers = Object.fromEntries(Object.entries(ports).map(([id, port]) => [id, `https://127.0.0.1:${port}`]));
  const start = (id: 'bench-ra' | 'bench-rb') =>
    startCallfsTarget({
      dir: join(suite.dir, id),
      tls: suite.tls,
      dsn: suite.db.dsn,
      redisAddr: suite.redisAddr,
      logFile: join(RESULTS_DIR, `${id}-output.log`),
      cleanup: suite.cleanup,
      log: suite.log,
      member: {
        instanceId: id,
        port: ports[id],
        keys,
        peers,
        // The repairer would scan the whole shared database (the main target's blobs have one copy): off here.
        config: { backend: { cas: { replicas: 2 } }, cluster: { heartbeat_interval: '250ms', down_after: '1s', repair_interval: '0' } },
      },
    });
  const a = await start('bench-ra');
  const b = await start('bench-rb');
  return { a, b };
}

export const replicated: Scenario = {
  name: 'replicas-2',
  async run(suite, index) {
    const { a, b } = await startPair(suite);
    try {
      return await measurePair(suite, index, this.name, a, b);
    } finally {
      // Off the server core before anything else runs there.
      await Promise.all([a.proc.stop('SIGTERM', 60_000), b.proc.stop('SIGTERM', 60_000)]);
    }
  },
};

async function measurePair(suite: Suite, index: number, name: string, a: CallfsTarget, b: CallfsTarget): Promise<ScenarioResult> {
  const headers = { authorization: a.authorization as string };
  const putRun = (prefix: string, count: number) => () =>
    runPutStreams({ port: a.port, tls: suite.tls.client, paths: Array.from({ length: count }, (_, n) => `${prefix}${n}`), headers, body: suite.largeBody, uniquePrefix: true, concurrency: CONCURRENCY, signal: suite.signal });
  // Warm-up, then the measured uploads.
  const warm = await putRun(`${a.writePrefix}repl-warm/`, CONCURRENCY * 2)();
  if (warm.non2xx + warm.socketErrors > 0) suite.log(`  callfs-r2: warm-up saw statuses ${warm.statuses.join(', ')} and ${warm.socketErrors} socket errors`);
  const put = (await measured(suite, name, a, { label: `PUT 64 MiB × ${FILES}, replicas 2, c=${CONCURRENCY}`, unit: 'MB/s' }, putRun(`${a.writePrefix}repl/`, FILES))).m;

  // Every acknowledged upload has its two copies.
  const client = createHttpClient({ port: b.port, tls: suite.tls.client, authorization: b.authorization as string, maxSockets: 4 });
  let twoCopies = 0;
  try {
    for (let n = 0; n < FILES; n++) {
      const head = expectStatus(await client.request('HEAD', `${a.writePrefix}repl/${n}`), 'HEAD', 200);
      if (String(head.headers['x-callfs-replicas'] ?? '').split(',').length === 2) twoCopies++;
    }
    // 1 MiB files written through A (its copy, and B's).
    const body = suite.largeBody.subarray(0, MiB);
    for (let n = 0; n < READ_FILES; n++) {
      const one = createHttpClient({ port: a.port, tls: suite.tls.client, authorization: a.authorization as string, maxSockets: 1 });
      try {
        const copy = Buffer.from(body);
        copy.writeUInt32BE(n, 0);
        expectStatus(await one.request('PUT', `${a.writePrefix}repl-m/${n}`, { body: copy }), 'PUT', 200, 201);
      } finally {
        one.close();
      }
    }
  } finally {
    client.close();
  }
  await a.proc.stop('SIGTERM', 60_000);
  // B sees A down after cluster.down_after.
  await new Promise((r) => setTimeout(r, 1500));
  const failover = (
    await measureWrk(suite, name, b, {
      script: 'read.lua',
      connections: 16,
      label: 'GET 1 MiB through B, holder A stopped, c=16',
      unit: 'MB/s',
      args: () => ['GET', `${b.readPrefix}repl-m/`, String(READ_FILES), b.authorization as string],
    })
  ).m;

  const one = suite.done.get('put-64m-unique')?.measurements.find((m) => m.target === 'callfs');
  const get1m = suite.done.get('get-1m')?.measurements.find((m) => m.target === 'callfs');
  const single: Measurement = one ?? { target: 'callfs', label: 'put-64m-unique not run', value: Number.NaN, unit: 'MB/s', non2xx: 0, socketErrors: 0 };
  return finishScenario(index, name, [put, failover], [
    ratio('callfs replicas 2 ÷ callfs put-64m-unique (replicas 1, same run)', 'primary', put, single.value, { op: '>=', threshold: 0.8 }),
    check(`uploads acknowledged with two copies (X-CallFS-Replicas), of ${FILES}`, twoCopies, '', { op: '>=', threshold: FILES }),
    check('failover GETs that were not 200', failover.non2xx + failover.socketErrors, '', { op: '<=', threshold: 0 }),
    ...(get1m === undefined ? [] : [ratio('failover GET ÷ callfs get-1m (holder up, same run)', 'secondary', failover, get1m.value)]),
  ]);
}
