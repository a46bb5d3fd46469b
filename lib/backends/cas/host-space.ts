import { CallfsError } from '../../errors.js';
import type { Logger } from '../../log/index.js';
import { capacityOf, type Capacity } from './volume-files.js';

/** Re-read the host's free space at least this often while uploads arrive. */
const CHECK_INTERVAL_MS = 1_000;

/** INSUFFICIENT_STORAGE for the CAS; `detail` goes to the log only. No Retry-After: only freed space helps. */
export function noRoom(detail: string, cause?: unknown): CallfsError {
  return new CallfsError('INSUFFICIENT_STORAGE', detail, { component: 'cas', ...(cause === undefined ? {} : { cause }) });
}

/**
 * The host filesystem under the CAS root, where every loop image grows (its
 * blocks are allocated on the host as they are written) and where dir-mode
 * images are. A loop image whose host fills up gets write errors on its loop
 * device and ext4 aborts its journal (measured: "critical space allocation
 * error", the image goes read-only), so uploads must be refused before that,
 * never after.
 *
 * Two levels: no upload starts while less than `minFreeBytes` is free (the
 * watermark: the store is then "full"), and uploads already running may use
 * the lower half of that reserve, never more (the floor), so that uploads
 * admitted together cannot push the host past it. Uploads take their bytes
 * from a budget (free space above the floor at the last reading) with plain
 * arithmetic; the host is read again (statfs) only once a second before an
 * upload starts, or when the budget runs out. A 4 KiB PUT costs no syscall
 * here.
 */
export class HostSpace {
  private at = 0;
  private budget = 0;
  /** Bytes reserved whose writes have not returned yet: a reading cannot have seen them. */
  private inflight = 0;
  private reading: Promise<Capacity> | null = null;
  private lowNow = false;
  private readonly listeners = new Set<(low: boolean) => void>();
  private readonly floorBytes: number;

  constructor(
    /** The CAS root, on the host filesystem. */
    readonly root: string,
    private readonly minFreeBytes: number,
    private readonly log: Logger,
  ) {
    this.floorBytes = Math.floor(minFreeBytes / 2);
  }

  /** True when the last reading found less than the watermark free. */
  get low(): boolean {
    return this.lowNow;
  }

  /** Called with the new state each time the host crosses the watermark, either way. */
  onChange(listener: (low: boolean) => void): void {
    this.listeners.add(listener);
  }

  /** Read the host now (concurrent callers share one statfs). */
  refresh(): Promise<Capacity> {
    this.reading ??= capacityOf(this.root)
      .then((c) => {
        this.at = Date.now();
        // A filesystem that reports no size (ramfs) has no capacity to enforce.
        const unmetered = c.sizeBytes === 0;
        this.budget = unmetered ? Infinity : c.freeBytes - this.floorBytes - this.inflight;
        this.setLow(!unmetered && c.freeBytes < this.minFreeBytes, c.freeBytes);
        return c;
      })
      .finally(() => {
        this.reading = null;
      });
    return this.reading;
  }

  /** Before an upload: throws INSUFFICIENT_STORAGE while the host is below the watermark. */
  async admit(): Promise<void> {
    if (Date.now() - this.at >= CHECK_INTERVAL_MS) await this.refresh();
    if (this.lowNow) throw noRoom(`the host filesystem under ${this.root} has less than ${this.minFreeBytes} bytes free`);
  }

  /**
   * Take `bytes` from the budget; false when it does not cover them (then
   * call reserveAfterRefresh). Once their write has returned, call written().
   */
  reserve(bytes: number): boolean {
    if (this.budget < bytes) return false;
    this.budget -= bytes;
    this.inflight += bytes;
    return true;
  }

  /** The write of `bytes` reserved earlier has returned (done or failed): later readings account for it. */
  written(bytes: number): void {
    this.inflight -= bytes;
  }

  /**
   * Run a write of `bytes` counted against the budget: taken first (the host
   * read again when the budget does not cover them, INSUFFICIENT_STORAGE if
   * it still does not; no promise hop when it does), handed back to later
   * readings once the write has returned, done or failed.
   */
  counted<T>(bytes: number, write: () => Promise<T>): Promise<T> {
    const run = (): Promise<T> => write().finally(() => this.written(bytes));
    return this.reserve(bytes) ? run() : this.reserveAfterRefresh(bytes).then(run);
  }

  /** Read the host again and take `bytes`, or throw INSUFFICIENT_STORAGE. */
  async reserveAfterRefresh(bytes: number): Promise<void> {
    await this.refresh();
    if (!this.reserve(bytes)) throw noRoom(`writing ${bytes} more bytes would leave less than ${this.floorBytes} bytes free on the host filesystem under ${this.root}`);
  }

  /** Space was freed: the next admit() reads the host again instead of trusting the last reading. */
  invalidate(): void {
    this.at = 0;
  }

  private setLow(low: boolean, freeBytes: number): void {
    if (low === this.lowNow) return;
    this.lowNow = low;
    if (low) this.log.warn({ freeBytes, minFreeBytes: this.minFreeBytes, root: this.root }, 'host filesystem under the CAS root is below its free-space watermark: uploads are refused (507) until space is freed');
    else this.log.info({ freeBytes, root: this.root }, 'host filesystem under the CAS root has room again');
    for (const listener of [...this.listeners]) listener(low);
  }
}
