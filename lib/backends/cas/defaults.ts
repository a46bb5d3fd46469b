import { parseDuration, parseSize } from '../../config/formats.js';

/**
 * The CAS's defaults, once, in the configuration's notation: the config
 * schema's defaults (backend.cas.*) are these strings, and the backend falls
 * back to the same values, parsed, when an option is left out.
 */
export const CAS_DEFAULTS = {
  image_size: '64GiB',
  min_free_bytes: '1GiB',
  min_free_inodes: 10_000,
  bytes_per_inode: '16KiB',
  gc_grace: '1h',
  gc_interval: '10m',
  scrub_bytes_per_second: '32MiB',
  scrub_interval: '24h',
  pack_below: '64KiB',
  segment_size: '64MiB',
} as const;

/** The defaults as numbers (bytes and milliseconds). */
export const CAS_DEFAULT_VALUES = {
  imageSizeBytes: parseSize(CAS_DEFAULTS.image_size),
  minFreeBytes: parseSize(CAS_DEFAULTS.min_free_bytes),
  minFreeInodes: CAS_DEFAULTS.min_free_inodes,
  bytesPerInode: parseSize(CAS_DEFAULTS.bytes_per_inode),
  gcGraceMs: parseDuration(CAS_DEFAULTS.gc_grace),
  gcIntervalMs: parseDuration(CAS_DEFAULTS.gc_interval),
  scrubBytesPerSecond: parseSize(CAS_DEFAULTS.scrub_bytes_per_second),
  scrubIntervalMs: parseDuration(CAS_DEFAULTS.scrub_interval),
  packBelowBytes: parseSize(CAS_DEFAULTS.pack_below),
  segmentBytes: parseSize(CAS_DEFAULTS.segment_size),
};
