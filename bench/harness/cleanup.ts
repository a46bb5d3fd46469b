/**
 * Everything the suite starts or changes registers how to undo it here; the
 * steps run last-in first-out exactly once, on success, on a failed step and
 * on SIGINT/SIGTERM. One failing step never keeps the others from running.
 */
export interface Cleanup {
  /** Register an undo step; returns a function that runs that step now (and unregisters it). */
  add(name: string, undo: () => Promise<void> | void): () => Promise<void>;
  /** Run every registered step, newest first. Safe to call more than once. */
  run(): Promise<void>;
}

interface Step {
  name: string;
  undo: () => Promise<void> | void;
  done: boolean;
}

export function createCleanup(log: (line: string) => void): Cleanup {
  const steps: Step[] = [];
  let running: Promise<void> | null = null;

  const newest = (): Step | undefined => steps.findLast((s) => !s.done);

  async function runStep(step: Step): Promise<void> {
    if (step.done) return;
    step.done = true;
    try {
      await step.undo();
    } catch (err) {
      log(`cleanup: ${step.name} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  return {
    add(name, undo) {
      const step: Step = { name, undo, done: false };
      steps.push(step);
      return () => runStep(step);
    },
    run() {
      running ??= (async () => {
        // Steps registered while cleaning up (a server that finished starting) are undone too.
        for (let step = newest(); step !== undefined; step = newest()) await runStep(step);
        running = null;
      })();
      return running;
    },
  };
}
