/**
 * Types for the parts of redlock@5.0.0-beta.2 that CallFS uses. The package
 * ships dist/index.d.ts, but its `exports` map has no `types` condition, so
 * TypeScript under NodeNext resolution cannot find it; this mirrors it.
 */
declare module 'redlock' {
  import type { EventEmitter } from 'node:events';
  import type { Redis } from 'ioredis';

  export interface ExecutionStats {
    readonly membershipSize: number;
    readonly quorumSize: number;
    readonly votesFor: Set<Redis>;
    readonly votesAgainst: Map<Redis, Error>;
  }

  export interface ExecutionResult {
    attempts: ReadonlyArray<Promise<ExecutionStats>>;
  }

  export interface Settings {
    readonly driftFactor: number;
    readonly retryCount: number;
    readonly retryDelay: number;
    readonly retryJitter: number;
    readonly automaticExtensionThreshold: number;
  }

  /** A server refused the operation because a key holds another lock's value (or is gone, on extend). */
  export class ResourceLockedError extends Error {
    constructor(message: string);
  }

  /** An operation did not reach a quorum; `attempts` resolve once every server has voted. */
  export class ExecutionError extends Error {
    readonly attempts: ReadonlyArray<Promise<ExecutionStats>>;
    constructor(message: string, attempts: ReadonlyArray<Promise<ExecutionStats>>);
  }

  export class Lock {
    readonly redlock: Redlock;
    readonly resources: string[];
    readonly value: string;
    readonly attempts: ReadonlyArray<Promise<ExecutionStats>>;
    expiration: number;
    release(): Promise<ExecutionResult>;
    extend(duration: number): Promise<Lock>;
  }

  export default class Redlock extends EventEmitter {
    readonly clients: Set<Redis>;
    readonly settings: Settings;
    constructor(clients: Iterable<Redis>, settings?: Partial<Settings>);
    quit(): Promise<void>;
    acquire(resources: string[], duration: number, settings?: Partial<Settings>): Promise<Lock>;
    release(lock: Lock, settings?: Partial<Settings>): Promise<ExecutionResult>;
    extend(existing: Lock, duration: number, settings?: Partial<Settings>): Promise<Lock>;
  }
}
