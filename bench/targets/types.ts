import type { ServerProcess } from '../harness/processes.js';

/** 'callfs-r2': an instance of the replication scenario's pair (replicas 2). */
export type TargetName = 'callfs' | 'callfs-r2' | 'B-nginx' | 'B-node';

/**
 * An HTTPS server under test. Every target serves the same seeded files
 * under its readPrefix — s/<n> (4 KiB, n < 2000), m/<n> (1 MiB, n < 64) and
 * big (256 MiB) — and takes uploads under its writePrefix.
 */
export interface HttpTarget {
  name: TargetName;
  port: number;
  /** Authorization header value, when the target checks one. */
  authorization?: string;
  readPrefix: string;
  writePrefix: string;
  proc: ServerProcess;
  /** Resident memory of the target's processes (nginx: master and worker), or null when gone. */
  rss(): number | null;
}

/** The seeded files (BENCH.md §6.2). */
export const SEED = {
  smallCount: 2000,
  smallSize: 4096,
  mediumCount: 64,
  mediumSize: 1024 * 1024,
  bigSize: 256 * 1024 * 1024,
} as const;
