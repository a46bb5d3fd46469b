-- Long tree operations (issue 27), kept here so that any instance can finish
-- them after a crash or restart (a worker holds a job by a lease).
--
-- 'delete': a recursive delete of a big directory. One short transaction
-- takes the tree out of the namespace: the directory's own row leaves its
-- path (it becomes the job's trash root, '#trash/<job id>', a row that is
-- nobody's child and that no path lookup asks for) and this row, state
-- 'running', marks `path`: rows still stored below it are the old tree's.
-- Until they are removed, in bounded batches, path lookups and listings skip
-- them and nothing may be created or moved below `path` (the directory
-- itself may be made again at once).
--
-- 'move': a rename or move of a big directory from `path` to `dest`. While
-- the job runs, readers see the whole tree at `path`; one transaction of its
-- own then moves it (readers see it whole at `dest` once it commits), and
-- writes at or below either path are refused meanwhile, so the namespace
-- lock is not held for the length of the move.
CREATE TABLE tree_jobs (
  id           text PRIMARY KEY,
  kind         text NOT NULL CHECK (kind IN ('delete', 'move')),
  path         text COLLATE "C" NOT NULL,
  dest         text COLLATE "C" CHECK ((kind = 'move') = (dest IS NOT NULL)),
  -- A move's options: {"overwrite": bool, "parents": {mode, uid, gid} | null}.
  options      jsonb NOT NULL DEFAULT '{}',
  -- The user who asked (only they, and root, may read the job).
  uid          bigint NOT NULL CHECK (uid >= 0),
  -- A delete never fails once the tree is detached: its batches are retried
  -- until done. A move fails only when the move itself is refused.
  state        text NOT NULL CHECK (state IN ('running', 'done', 'failed')),
  -- Entries below `path` when the job started, and how many are done.
  total        bigint NOT NULL DEFAULT 0 CHECK (total >= 0),
  done         bigint NOT NULL DEFAULT 0 CHECK (done >= 0),
  -- A failed move's error: {"code", "message"}.
  error        jsonb,
  -- The instance working on it; another takes over once the lease runs out.
  lease_owner  text,
  lease_until  timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz
);

-- The marks every path lookup, listing and write consults: usually none.
CREATE INDEX tree_jobs_running ON tree_jobs (path) WHERE state = 'running';
CREATE INDEX tree_jobs_finished ON tree_jobs (finished_at) WHERE state <> 'running';
