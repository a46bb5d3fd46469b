import type { Logger } from '../../log/index.js';

/** Pause between urgent collections while the host stays below its watermark. */
const PRESSURE_INTERVAL_MS = 1_000;

export interface PressureReclaimerOptions {
  /** One collection without grace period (pinned blobs are still skipped). */
  collect: () => Promise<unknown>;
  /** Whether space is still short, read afresh. */
  stillShort: () => Promise<boolean>;
  logger: Logger;
}

/**
 * Reclaims space at once when the store runs short, instead of after the
 * collector's grace period: a refused upload (or the host crossing its
 * watermark) triggers a collection of every unreferenced blob, and another
 * follows every second for as long as the host stays short. Files deleted
 * or replaced meanwhile, on this instance or another (the CAS hears of
 * neither), lose their last reference in the index; the next pass finds
 * them, so their room comes back within seconds without any hook in the
 * delete path.
 */
export class PressureReclaimer {
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly options: PressureReclaimerOptions) {}

  /**
   * Collect now, or, when collections are already running, make sure one
   * more follows after the pause (so a storm of refusals costs one
   * collection a second, not one each).
   */
  trigger(): void {
    if (this.stopped) return;
    if (this.running !== null) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = null;
    });
  }

  /** Stop; resolves once a collection in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { collect, stillShort, logger } = this.options;
    for (;;) {
      try {
        await collect();
      } catch (err) {
        logger.error({ err }, 'urgent CAS collection failed');
      }
      if (this.stopped) return;
      let short: boolean;
      try {
        short = await stillShort();
      } catch (err) {
        logger.warn({ err }, 'cannot read the CAS free space after an urgent collection');
        short = true;
      }
      if (!short && !this.again) return;
      this.again = false;
      await this.pause();
      if (this.stopped) return;
    }
  }

  private pause(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        if (this.timer !== null) clearTimeout(this.timer);
        this.timer = null;
        this.wake = null;
        resolve();
      };
      this.wake = done;
      this.timer = setTimeout(done, PRESSURE_INTERVAL_MS);
      this.timer.unref();
    });
  }
}
