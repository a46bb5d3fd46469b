import type { Gate, Measurement, ScenarioResult } from './types.js';

/**
 * Ratios and checks. A ratio is INVALID when its scenario saw any non-2xx
 * response or socket error (BENCH.md §6.4), whatever its value; n/a when a
 * figure it needs was not measured in this run.
 */
export function ratio(
  label: string,
  kind: 'primary' | 'secondary',
  numerator: Measurement | number | undefined,
  denominator: Measurement | number | undefined,
  gate?: { op: '>=' | '<='; threshold: number },
): Gate {
  const num = typeof numerator === 'number' ? numerator : numerator?.value;
  const den = typeof denominator === 'number' ? denominator : denominator?.value;
  const value = num === undefined || den === undefined || !(den > 0) ? null : num / den;
  return judge({ label, kind, value, unit: '×', ...(gate ?? {}), status: 'info' });
}

/** A check with an amount (RSS growth) or a pass/fail (value 1 or 0 with threshold 1). */
export function check(label: string, value: number | null, unit: Gate['unit'], gate: { op: '>=' | '<='; threshold: number }, note?: string): Gate {
  return judge({ label, kind: 'check', value, unit, ...gate, status: 'info', ...(note === undefined ? {} : { note }) });
}

function judge(gate: Gate): Gate {
  if (gate.value === null) return { ...gate, status: 'n/a' };
  if (gate.op === undefined || gate.threshold === undefined) return { ...gate, status: 'info' };
  const ok = gate.op === '>=' ? gate.value >= gate.threshold : gate.value <= gate.threshold;
  return { ...gate, status: ok ? 'met' : 'below' };
}

/** Whether every measurement of a scenario was clean. */
export function clean(measurements: Measurement[]): boolean {
  return measurements.every((m) => m.non2xx === 0 && m.socketErrors === 0);
}

/** Finish a scenario: ratios (not checks) of an unclean scenario become INVALID. */
export function finishScenario(index: number, name: string, measurements: Measurement[], gates: Gate[], notes: string[] = []): ScenarioResult {
  const valid = clean(measurements);
  return {
    index,
    name,
    measurements,
    gates: gates.map((g) => (valid || g.kind === 'check' ? g : { ...g, status: 'INVALID' })),
    notes,
    valid,
  };
}
