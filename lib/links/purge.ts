import type { Logger } from '../log/index.js';
import type { MetadataStore } from '../metadata/types.js';
import { MAX_EXPIRY_SECONDS } from './service.js';

/** setTimeout fires at once for delays past 2^31-1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LinkPurgeOptions {
  store: Pick<MetadataStore, 'purgeLinks'>;
  /** links.purge_interval in ms; 0 or less: no background runs (runOnce still works). */
  intervalMs: number;
  logger: Logger;
  /**
   * How long a row outlives its expiry or use. The default (the longest link
   * lifetime) keeps a used link's row until its token has expired too, so a
   * replay keeps answering LINK_USED rather than LINK_NOT_FOUND.
   */
  retentionMs?: number;
  /** Clock (tests). */
  now?: () => Date;
}

/** The background job that deletes expired and used links. */
export interface LinkPurge {
  /** Purge now; resolves to the number of rows removed. Errors reject (the timer logs them instead). */
  runOnce(): Promise<number>;
  /** Stop the timer and wait for a run in progress. */
  stop(): Promise<void>;
}

/**
 * Start the purge: one run every `intervalMs`, never two at once, on an
 * unref'd timer (it never keeps the process alive). Every instance of a
 * cluster runs it; the DELETEs are idempotent.
 */
export function startLinkPurge(options: LinkPurgeOptions): LinkPurge {
  const { store, intervalMs, logger } = options;
  const retentionMs = options.retentionMs ?? MAX_EXPIRY_SECONDS * 1000;
  const now = options.now ?? (() => new Date());
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<number> | null = null;
  let stopped = false;

  function runOnce(): Promise<number> {
    running ??= store.purgeLinks(new Date(now().getTime() - retentionMs)).finally(() => {
      running = null;
    });
    return running;
  }

  function schedule(): void {
    if (stopped || intervalMs <= 0) return;
    timer = setTimeout(() => {
      timer = null;
      runOnce().then(
        (removed) => {
          if (removed > 0) logger.info({ removed }, 'purged expired and used single-use links');
        },
        (err: unknown) => logger.warn({ err }, 'single-use link purge failed; will retry'),
      ).finally(schedule);
    }, Math.min(intervalMs, MAX_TIMER_MS));
    timer.unref();
  }

  schedule();
  return {
    runOnce,
    async stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      await running?.catch(() => undefined);
    },
  };
}
