import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createHttpClient, expectStatus } from '../load/http.js';
import { runCommand } from '../harness/processes.js';
import { check, finishScenario, ratio } from '../report/gates.js';
import type { Measurement } from '../report/types.js';
import type { HttpTarget } from '../targets/types.js';
import type { Scenario, Suite } from './context.js';
import { format, measureWrk } from './measure.js';

/**
 * Scenario 8: 16 connections PUT 4 KiB to ONE path. Writers must serialise on
 * the path lock without 5xx or timeouts, and the file must end up holding
 * exactly one of the bodies sent — never a mix.
 */

const PATH = 'one';
const SECONDS = 6;

/** put.lua bodies: 15 hex digits (run token, thread, counter) and a newline, then the body file from byte 16. */
function isOneOfTheBodies(content: Buffer, bodyFile: string): boolean {
  const rest = readFileSync(bodyFile).subarray(16);
  return content.length === 16 + rest.length && /^[0-9a-f]{15}\n$/.test(content.subarray(0, 16).toString('latin1')) && content.subarray(16).equals(rest);
}

/** redis-benchmark SET NX PX at c=16: what one lock round trip costs at best (informational). */
async function lockCeiling(suite: Suite): Promise<Measurement | undefined> {
  if (suite.tools.redisBenchmark === null) return undefined;
  const [host, port] = suite.redisAddr.split(':');
  const r = await runCommand(
    suite.tools.redisBenchmark,
    ['-h', host ?? '127.0.0.1', '-p', port ?? '6379', '-c', '16', '-n', '100000', '-r', '1000000', '--csv', 'SET', 'callfs-bench:lock:__rand_int__', 'token', 'NX', 'PX', '30000'],
    { timeoutMs: 60_000, signal: suite.signal },
  );
  const rps = Number(/^"[^"]*","([\d.]+)"/m.exec(r.stdout)?.[1] ?? Number.NaN);
  if (r.code !== 0 || Number.isNaN(rps)) {
    suite.log(`  redis-benchmark failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' ')}`);
    return undefined;
  }
  const m: Measurement = { target: 'redis', label: 'redis-benchmark SET NX PX, c=16', value: rps, unit: 'req/s', non2xx: 0, socketErrors: 0 };
  suite.log(`  redis   ${format(m)}`);
  return m;
}

export const putSamePathContention: Scenario = {
  name: 'put-same-path-contention',
  async run(suite, index) {
    const t = suite.callfs;
    const { m, raw } = await measureWrk(suite, this.name, t, {
      script: 'put.lua',
      connections: 16,
      seconds: SECONDS,
      label: 'PUT 4 KiB to one path, c=16',
      unit: 'req/s',
      args: (x: HttpTarget, warm: boolean) => ['same', `${x.writePrefix}${warm ? 'warm/one' : PATH}`, suite.smallBody, x.authorization ?? '-', 'classes'],
    });
    const redis = await lockCeiling(suite);

    const client = createHttpClient({ port: t.port, tls: suite.tls.client, authorization: t.authorization ?? '', maxSockets: 1 });
    const intact = await client
      .request('GET', `${t.readPrefix}${PATH}`)
      .then((r) => expectStatus(r, `GET ${PATH}`, 200))
      .then((r) => isOneOfTheBodies(r.body, suite.smallBody) && String(r.headers.etag ?? '').replace(/"/g, '') === createHash('sha256').update(r.body).digest('hex'))
      .finally(() => client.close());
    const uncontended = suite.done.get('put-4k-unique')?.measurements.find((x) => x.target === 'callfs');
    const { n4xx, n5xx } = raw.classes;
    return finishScenario(
      index,
      this.name,
      redis === undefined ? [m] : [m, redis],
      [
        ratio('callfs contended ÷ callfs put-4k-unique (self)', 'primary', m, uncontended, { op: '>=', threshold: 0.3 }),
        check('5xx responses (must be 0)', n5xx, '', { op: '<=', threshold: 0 }, `${n4xx} 4xx`),
        check('final content is exactly one of the bodies, ETag = its SHA-256', intact ? 1 : 0, '', { op: '>=', threshold: 1 }),
        ratio('callfs contended ÷ redis SET NX PX (lock ceiling)', 'secondary', m, redis),
      ],
    );
  },
};
