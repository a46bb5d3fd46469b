import type { Counter, Histogram, LabelValues } from 'prom-client';

/** Receives every observation a metric records: its labels and its value (an increment or a sample). */
export type Tee<T extends string> = (labels: LabelValues<T>, value: number) => void;

type Recorder<T extends string> = (first?: LabelValues<T> | number, second?: number) => void;

/**
 * prom-client's argument forms `(value)` and `(labels, value)` as one pair.
 * Exemplars are not enabled on our metrics, so an object is always labels (as for prom-client).
 */
function labelsAndValue<T extends string>(first: LabelValues<T> | number | undefined, second: number | undefined, otherwise: number): [LabelValues<T>, number] {
  if (first === undefined || typeof first === 'number') return [{}, first ?? otherwise];
  return [first, second ?? otherwise];
}

/*
 * prom-client installs inc/observe on each instance in its constructor (one
 * variant with exemplars, one without), so the tee wraps the instance's
 * method. Its timers (startTimer) record through this.observe, so they are
 * teed too.
 */

/**
 * Make `counter` hand each increment to `tee` as well, after recording it.
 * The same event then feeds a second metric (another name, other labels)
 * from the one place that observes it, instead of from a second call at
 * every call site.
 */
export function teeCounter<T extends string>(counter: Counter<T>, tee: Tee<T>): Counter<T> {
  const record = counter.inc.bind(counter) as Recorder<T>;
  const inc: Recorder<T> = (first, second) => {
    record(first, second);
    tee(...labelsAndValue(first, second, 1));
  };
  counter.inc = inc as Counter<T>['inc'];
  return counter;
}

/** Make `histogram` hand each sample to `tee` as well, after recording it. */
export function teeHistogram<T extends string>(histogram: Histogram<T>, tee: Tee<T>): Histogram<T> {
  const record = histogram.observe.bind(histogram) as Recorder<T>;
  const observe: Recorder<T> = (first, second) => {
    record(first, second);
    tee(...labelsAndValue(first, second, 0));
  };
  histogram.observe = observe as Histogram<T>['observe'];
  return histogram;
}
