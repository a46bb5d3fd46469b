import type { Logger } from '../log/index.js';

/** The authenticated caller, as lib/auth defines users. */
export interface Caller {
  name: string;
  uid: number;
  gid: number;
  groups: number[];
}

/** What middleware puts on ctx.state for the handlers below it. */
export interface RequestState {
  requestId: string;
  log: Logger;
  /** Set by the auth middleware on authenticated routes. */
  user?: Caller;
  /** Aborts when the client goes away before the response is finished. */
  signal: AbortSignal;
  /** Route label for metrics (a fixed set, never a raw path). */
  route?: string;
  /** Code of the error the response carries, set by the error envelope (metrics). */
  errorCode?: string;
}
