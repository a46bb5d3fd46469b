import { ExecutionError, ResourceLockedError } from 'redlock';

/** How the servers voted against a failed Redlock operation. */
export interface Refusal {
  /** Servers on which a key holds another lock's value (or, on extend, no longer ours). */
  locked: number;
  membership: number;
  quorum: number;
}

/**
 * Read the votes of a failed redlock operation, to tell "held by someone
 * else" (ResourceLockedError votes) from "servers did not answer" (any other
 * error). Null when `err` is not a quorum failure or carries no attempt. The
 * attempt's stats resolve once every server has answered, which the clients'
 * command timeout bounds.
 */
export async function readRefusal(err: unknown): Promise<Refusal | null> {
  if (!(err instanceof ExecutionError)) return null;
  const last = err.attempts[err.attempts.length - 1];
  if (last === undefined) return null;
  const stats = await last;
  let locked = 0;
  for (const vote of stats.votesAgainst.values()) if (vote instanceof ResourceLockedError) locked++;
  return { locked, membership: stats.membershipSize, quorum: stats.quorumSize };
}
