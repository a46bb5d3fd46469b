/** A background job of the cluster's (repairer, S3 replica outbox), run again `intervalMs` after each run ends. */
export interface Repeating {
  /** No run starts after this; a run in progress is the caller's to wait for. */
  stop(): void;
}

/** Run `job` every `intervalMs` after the previous run ended, on an unref'd timer (it never keeps the process alive); failures go to `onError`. */
export function repeatEvery(intervalMs: number, job: () => Promise<unknown>, onError: (err: unknown) => void): Repeating {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = null;
      job().catch(onError).finally(schedule);
    }, intervalMs);
    timer.unref();
  };
  schedule();
  return {
    stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
    },
  };
}
