-- The guard of a one-round-trip file write (issue 22), as a function whose
-- plans PostgreSQL keeps per connection. Written inline, the guard made every
-- small PUT plan a statement with two subqueries over unnest() and
-- tree_jobs: 0.13 ms of the 0.34 ms the guarded INSERT cost (measured with
-- pg_stat_statements.track_planning), on a session that plans every
-- statement afresh (plan_cache_mode = force_custom_plan, see
-- postgres-driver.ts). Each lookup is by primary key (one row at a time: the
-- same query over unnest() as one generic plan cost 0.8 ms a call under the
-- bench's load), so a generic plan is right whatever the table statistics
-- say; enable_seqscan = off keeps a plan made while the tables were nearly
-- empty from scanning them once they are not.
--
-- True when each row (ids[i], paths[i], versions[i]) is unchanged (same id,
-- path and version: every change to a row moves its version or its path, and
-- a row deleted and created again has a new id), and no running tree job
-- forbids a write below `strict_ancestors` (a delete or a move of one of
-- them) or at `with_self` (either end of a move). See treeJobBlocks in
-- namespace-sql.ts, which writes the same test inline.
CREATE FUNCTION callfs_write_allowed(ids bigint[], paths text[], versions bigint[], strict_ancestors text[], with_self text[])
RETURNS boolean
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
BEGIN
  FOR i IN 1 .. coalesce(cardinality(ids), 0) LOOP
    PERFORM FROM inodes WHERE id = ids[i] AND path = paths[i] AND version = versions[i];
    IF NOT FOUND THEN
      RETURN false;
    END IF;
  END LOOP;
  RETURN NOT EXISTS (SELECT FROM tree_jobs j WHERE j.state = 'running' AND (j.path = ANY (strict_ancestors)
           OR (j.kind = 'move' AND (j.path = ANY (with_self) OR j.dest = ANY (with_self)))));
END;
$$;

-- The reference-count trigger of inserts and updates runs on every CAS write:
-- its two statements (by primary key) keep their plans too.
ALTER FUNCTION callfs_inodes_blob_refs() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION callfs_inodes_blob_refs() SET enable_seqscan = off;

-- The rows at `paths`, for the path lookups (getChain) of every request whose
-- entry is not cached: a new file's PUT, a first read. Planned once per
-- connection like the guard, and by key one path at a time (7 µs each), where
-- `path = ANY($1)` was planned afresh on each call (0.08 ms).
CREATE FUNCTION callfs_entries(paths text[])
RETURNS SETOF inodes
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
  p text;
BEGIN
  FOREACH p IN ARRAY coalesce(paths, '{}') LOOP
    RETURN QUERY SELECT * FROM inodes WHERE path = p;
  END LOOP;
END;
$$;
