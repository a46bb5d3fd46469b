export type { LockManager, LockOptions } from './types.js';
export { createLocalLockManager, type LocalLockManagerOptions } from './local.js';
export { createRedlockLockManager, type RedlockLockManagerOptions, type RedisServerOptions } from './redlock.js';
