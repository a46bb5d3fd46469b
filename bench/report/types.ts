import type { RequestBreakdown } from '../harness/callfs-metrics.js';
import type { CpuUsage } from '../harness/cpu.js';

/** One measured figure: a target doing one workload. */
export interface Measurement {
  /** callfs, B-nginx, B-node, B-pg, B-ceil, redis. */
  target: string;
  /** What was done, e.g. "PUT 4 KiB, c=16". */
  label: string;
  value: number;
  unit: 'req/s' | 'MB/s' | 'tps' | 'entries/s';
  p50Ms?: number;
  p99Ms?: number;
  requests?: number;
  non2xx: number;
  socketErrors: number;
  /** Peak resident memory of the target during the measurement. */
  peakRssMiB?: number;
  /** The server core during the measurement, and each server process's share of it. */
  cpu?: CpuUsage;
  /** CallFS only: where a request's work went, from its own metrics. */
  perRequest?: RequestBreakdown;
}

export type GateStatus = 'met' | 'below' | 'INVALID' | 'info' | 'n/a';

/** A ratio or a check, with its gate when it has one. */
export interface Gate {
  label: string;
  kind: 'primary' | 'secondary' | 'check';
  value: number | null;
  /** How value reads: a ratio (×) or an amount. */
  unit: '×' | 'MiB' | '';
  /** The gate: value op threshold; absent for informational ratios. */
  op?: '>=' | '<=';
  threshold?: number;
  status: GateStatus;
  note?: string;
}

export interface ScenarioResult {
  index: number;
  name: string;
  measurements: Measurement[];
  gates: Gate[];
  notes: string[];
  /** False when any measurement saw a non-2xx response or a socket error: its ratios are INVALID. */
  valid: boolean;
}

/** A measured window of the CallFS server, for slicing its CPU profile (CLOCK_MONOTONIC µs). */
export interface ProfileWindow {
  scenario: string;
  startUs: number;
  endUs: number;
}
