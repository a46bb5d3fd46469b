/** Single-use download links: tokens, the generate/redeem service and the purge job. */
export { createLinkService, DEFAULT_EXPIRY_SECONDS, MAX_EXPIRY_SECONDS } from './service.js';
export type { ConsumptionStatus, GeneratedLink, LinkService, LinkServiceOptions, RedeemedLink } from './service.js';
export { createLinkTokens } from './token.js';
export type { LinkClaims, LinkTokens, LinkTokensOptions } from './token.js';
export { startLinkPurge } from './purge.js';
export type { LinkPurge, LinkPurgeOptions } from './purge.js';
