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
  /** Metrics route label for an answer no route took (a fixed value, never a raw path); a matched route is labelled by its pattern. */
  route?: string;
  /** Code of the error the response carries, set by the error envelope (metrics). */
  errorCode?: string;
}
