import { check, finishScenario, ratio } from '../report/gates.js';
import type { Measurement } from '../report/types.js';
import { SEED, type HttpTarget } from '../targets/types.js';
import { inTurn, type Scenario } from './context.js';
import { measureWrk } from './measure.js';

/** Scenarios 4 and 5: large GETs against nginx over TLS — the headline ratios. */

const auth = (t: HttpTarget): string => t.authorization ?? '-';
const MiB = 1024 * 1024;

export const get1m: Scenario = {
  name: 'get-1m',
  async run(suite, index) {
    const spec = {
      script: 'read.lua' as const,
      connections: 16,
      label: 'GET 1 MiB, c=16',
      unit: 'MB/s' as const,
      args: (t: HttpTarget) => ['GET', `${t.readPrefix}m/`, String(SEED.mediumCount), auth(t)],
    };
    const m: Record<string, Measurement> = {};
    await inTurn(
      index,
      async () => void (m.callfs = (await measureWrk(suite, this.name, suite.callfs, spec)).m),
      [async () => void (m.nginx = (await measureWrk(suite, this.name, suite.nginx, spec)).m), async () => void (m.node = (await measureWrk(suite, this.name, suite.node, spec)).m)],
    );
    return finishScenario(index, this.name, Object.values(m), [
      ratio('callfs ÷ B-nginx', 'primary', m.callfs, m.nginx, { op: '>=', threshold: 0.8 }),
      ratio('callfs ÷ B-node', 'secondary', m.callfs, m.node),
    ]);
  },
};

export const get256mStream: Scenario = {
  name: 'get-256m-stream',
  async run(suite, index) {
    const ceilings = await suite.ceilings();
    const spec = {
      script: 'read.lua' as const,
      connections: 2,
      label: 'GET 256 MiB, c=2',
      unit: 'MB/s' as const,
      args: (t: HttpTarget) => ['GET', `${t.readPrefix}big`, '0', auth(t)],
    };
    const m: Record<string, Measurement> = {};
    let growth: number | null = null;
    await inTurn(
      index,
      async () => {
        // Growth over the RSS before the warm-up: backpressure must keep a 256 MiB stream from being buffered.
        const before = suite.rss.now('callfs');
        const from = performance.now();
        m.callfs = (await measureWrk(suite, this.name, suite.callfs, spec)).m;
        const peak = suite.rss.peakBetween('callfs', from, performance.now());
        growth = before === null || peak === null ? null : (peak - before) / MiB;
      },
      [async () => void (m.nginx = (await measureWrk(suite, this.name, suite.nginx, spec)).m), async () => void (m.node = (await measureWrk(suite, this.name, suite.node, spec)).m)],
    );
    const ceil: Measurement = { target: 'B-ceil', label: 'Node TLS loopback, server core encrypts (3 s)', value: ceilings.tlsSend, unit: 'MB/s', non2xx: 0, socketErrors: 0 };
    return finishScenario(index, this.name, [...Object.values(m), ceil], [
      ratio('callfs ÷ B-nginx', 'primary', m.callfs, m.nginx, { op: '>=', threshold: 0.8 }),
      check('callfs RSS growth while streaming (peak − before)', growth, 'MiB', { op: '<=', threshold: 64 }),
      ratio('callfs ÷ B-ceil Node TLS send (one core encrypts)', 'secondary', m.callfs, ceilings.tlsSend),
      ratio('callfs ÷ B-node', 'secondary', m.callfs, m.node),
    ]);
  },
};
