import type { Settings } from '../../config/settings.js';
import type { Logger } from '../../log/index.js';
import type { Metrics } from '../../metrics/index.js';
import type { BlobIndex, CasBackendOptions, CasModeSetting } from './types.js';

/**
 * CAS backend options from the configuration (backend.cas.*, the CAS root,
 * the instance id). The one mapping for every process that opens the CAS:
 * the server and the admin CLI working without a server must agree on image
 * size and watermarks, or one seals images the other made and creates images
 * of another size.
 */
export function casOptionsFromSettings(
  settings: Pick<Settings, 'config' | 'casRoot'>,
  deps: { index: BlobIndex; logger: Logger; metrics: Metrics; mode?: CasModeSetting },
): CasBackendOptions {
  const { config } = settings;
  const cas = config.backend.cas;
  return {
    rootDir: settings.casRoot,
    mode: deps.mode ?? cas.mode,
    instanceId: config.instance_discovery.instance_id,
    index: deps.index,
    logger: deps.logger,
    metrics: deps.metrics,
    imageSizeBytes: cas.image_size,
    minFreeBytes: cas.min_free_bytes,
    minFreeInodes: cas.min_free_inodes,
    bytesPerInode: cas.bytes_per_inode,
    gcGraceMs: cas.gc_grace,
    gcIntervalMs: cas.gc_interval,
    scrubBytesPerSecond: cas.scrub_bytes_per_second,
    scrubIntervalMs: cas.scrub_interval,
    packBelowBytes: cas.pack_below,
    segmentBytes: cas.segment_size,
  };
}
