import type { Tools } from '../harness/install.js';
import type { Cleanup } from '../harness/cleanup.js';
import type { CpuMeter } from '../harness/cpu.js';
import type { RssSampler } from '../harness/rss-sampler.js';
import type { BenchTls } from '../harness/tls.js';
import type { Ceilings } from '../load/ceiling.js';
import type { HttpClient } from '../load/http.js';
import type { ProfileWindow, ScenarioResult } from '../report/types.js';
import type { CallfsTarget } from '../targets/callfs.js';
import type { ScratchDatabase } from '../targets/postgres.js';
import type { HttpTarget } from '../targets/types.js';

/** Everything a scenario needs, built by run.ts. */
export interface Suite {
  tools: Tools;
  tls: BenchTls;
  /** The suite's temp directory. */
  dir: string;
  /** The baselines' static root, holding the seeded files. */
  staticRoot: string;
  /** Redis "host:port" (CallFS's locks). */
  redisAddr: string;
  callfs: CallfsTarget;
  nginx: HttpTarget;
  node: HttpTarget;
  db: ScratchDatabase;
  pgScripts: { pkSelect: string; insert: string };
  /** A 4 KiB random file: put.lua's bodies are its bytes after a 16-byte header (run token, thread, counter). */
  smallBody: string;
  /** 64 MiB of random bytes for the large PUTs. */
  largeBody: Buffer;
  /** Seconds of each measurement (BENCH.md: 8) and of each warm-up (2). */
  seconds: number;
  warmupSeconds: number;
  rss: RssSampler;
  /** Server-core and per-process CPU of each measured window. */
  cpu: CpuMeter;
  /** Reads CallFS's /metrics around its measurements. */
  callfsMetrics: HttpClient;
  cleanup: Cleanup;
  signal: AbortSignal;
  log: (line: string) => void;
  /** Results of earlier scenarios, for self-ratios. */
  done: Map<string, ScenarioResult>;
  /** Measured once, before the first scenario that needs them. */
  ceilings: () => Promise<Ceilings>;
  /** The CallFS 4 KiB seeds exist (put-4k-unique made them, or ensureSmallSeeds). */
  smallSeeded: boolean;
  /** Where the CallFS measurements fell in time, for the CPU profile. */
  windows: ProfileWindow[];
}

/** A scenario of BENCH.md §6.2. `index` is its 1-based number; even and odd swap the target order. */
export interface Scenario {
  name: string;
  run(suite: Suite, index: number): Promise<ScenarioResult>;
}

/**
 * Interleaving (BENCH.md §6.1): CallFS first in odd scenarios, the baselines
 * first in even ones, so that neither side always runs on a warmer machine.
 */
export async function inTurn(index: number, callfs: () => Promise<void>, baselines: (() => Promise<void>)[]): Promise<void> {
  const steps = index % 2 === 1 ? [callfs, ...baselines] : [...baselines, callfs];
  for (const step of steps) await step();
}

/** CLOCK_MONOTONIC in µs, the clock of V8's CPU profiles. */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);
