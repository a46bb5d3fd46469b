/**
 * The loop-image content-addressed store: blobs named by their sha256 in
 * ext4 images (or plain directories), see docs_markdown/05-backend-configuration.md.
 */
export { createCasBackend } from './backend.js';
export { resolveCasMode, loopModeProblem, type CasModeResolution } from './mode.js';
export { casOptionsFromSettings } from './settings.js';
export type {
  BlobIndex,
  CasBackend,
  CasBackendOptions,
  CasImageInfo,
  CasImageState,
  CasMode,
  CasModeSetting,
  GcResult,
  ScrubOptions,
  ScrubResult,
} from './types.js';
