import { finishScenario, ratio } from '../report/gates.js';
import type { Measurement } from '../report/types.js';
import { SEED, type HttpTarget } from '../targets/types.js';
import { inTurn, type Scenario, type Suite } from './context.js';
import { measureHead, measurePgbench, measureWrk } from './measure.js';
import { ensureSmallSeeds } from './seed.js';

/** Scenarios 1–3: small PUTs, HEAD (metadata) and small GETs — per-request costs. */

const auth = (t: HttpTarget): string => t.authorization ?? '-';

async function seeded(suite: Suite, notes: string[]): Promise<void> {
  if (suite.smallSeeded) return;
  const filled = await ensureSmallSeeds(suite);
  if (filled > 0) notes.push(`${filled} of the ${SEED.smallCount} CallFS seeds were written by the harness`);
}

export const put4kUnique: Scenario = {
  name: 'put-4k-unique',
  async run(suite, index) {
    const spec = {
      script: 'put.lua' as const,
      connections: 16,
      label: 'PUT 4 KiB, unique paths and contents, c=16',
      unit: 'req/s' as const,
      // Measured PUTs go to s/0, s/1, …: CallFS's first 2,000 are the seeds of scenarios 2 and 3.
      args: (t: HttpTarget, warm: boolean) => ['unique', `${t.writePrefix}${warm ? 'warm/s-' : 's/'}`, suite.smallBody, auth(t)],
    };
    const m: Record<string, Measurement> = {};
    await inTurn(
      index,
      async () => void (m.callfs = (await measureWrk(suite, this.name, suite.callfs, spec)).m),
      [
        async () => void (m.node = (await measureWrk(suite, this.name, suite.node, { ...spec, label: 'cas-PUT 4 KiB, c=16' })).m),
        async () => void (m.nginx = (await measureWrk(suite, this.name, suite.nginx, { ...spec, label: 'WebDAV PUT 4 KiB, c=16' })).m),
        async () => void (m.pg = await measurePgbench(suite, suite.pgScripts.insert, 16, 'upsert (B-node row), c=16')),
      ],
    );
    suite.smallSeeded = false;
    const notes: string[] = [];
    await seeded(suite, notes);
    return finishScenario(
      index,
      this.name,
      Object.values(m),
      [
        ratio('callfs ÷ B-node cas-PUT', 'primary', m.callfs, m.node, { op: '>=', threshold: 0.8 }),
        ratio('callfs ÷ B-nginx WebDAV PUT (no hash, fsync or DB)', 'secondary', m.callfs, m.nginx),
        ratio('callfs ÷ B-pg upsert tps', 'secondary', m.callfs, m.pg),
      ],
      notes,
    );
  },
};

export const headMeta: Scenario = {
  name: 'head-meta',
  async run(suite, index) {
    const notes: string[] = [];
    await seeded(suite, notes);
    const m: Record<string, Measurement> = {};
    await inTurn(
      index,
      async () => void (m.callfs = await measureHead(suite, this.name, suite.callfs, 32, SEED.smallCount)),
      [
        async () => void (m.pg = await measurePgbench(suite, suite.pgScripts.pkSelect, 32, 'SELECT inodes by path, c=32')),
        async () => void (m.node = await measureHead(suite, this.name, suite.node, 32, SEED.smallCount)),
      ],
    );
    return finishScenario(
      index,
      this.name,
      Object.values(m),
      [
        ratio('callfs ÷ B-pg PK SELECT tps', 'primary', m.callfs, m.pg, { op: '>=', threshold: 0.5 }),
        ratio('callfs ÷ B-node HEAD (fs.stat)', 'secondary', m.callfs, m.node),
      ],
      notes,
    );
  },
};

export const get4k: Scenario = {
  name: 'get-4k',
  async run(suite, index) {
    const notes: string[] = [];
    await seeded(suite, notes);
    const spec = {
      script: 'read.lua' as const,
      connections: 32,
      label: 'GET 4 KiB, c=32',
      unit: 'req/s' as const,
      args: (t: HttpTarget) => ['GET', `${t.readPrefix}s/`, String(SEED.smallCount), auth(t)],
    };
    const m: Record<string, Measurement> = {};
    await inTurn(
      index,
      async () => void (m.callfs = (await measureWrk(suite, this.name, suite.callfs, spec)).m),
      [async () => void (m.node = (await measureWrk(suite, this.name, suite.node, spec)).m), async () => void (m.nginx = (await measureWrk(suite, this.name, suite.nginx, spec)).m)],
    );
    return finishScenario(
      index,
      this.name,
      Object.values(m),
      [
        ratio('callfs ÷ B-node GET', 'primary', m.callfs, m.node, { op: '>=', threshold: 0.5 }),
        ratio('callfs ÷ B-nginx GET (Node per-request cost)', 'secondary', m.callfs, m.nginx),
      ],
      notes,
    );
  },
};
