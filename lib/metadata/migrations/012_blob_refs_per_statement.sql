-- Small PUTs commit their entries in batches, many rows to one INSERT
-- (issue 22), so the reference counts of inserted entries are kept as those
-- of deleted ones are: once per statement, over the rows it inserted, one
-- upsert per distinct blob. A row trigger ran a PL/pgSQL call and an upsert
-- per row: about a fifth of PostgreSQL's time per small PUT (perf, under the
-- bench's load). Blob rows are taken in key order, as the guarded write's own
-- blob upsert and the delete trigger take them, so that concurrent writers
-- do not deadlock each other. Blob-changing updates keep their row trigger.
CREATE FUNCTION callfs_inodes_blob_refs_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO blobs (instance_id, sha256, size, ref_count)
  SELECT instance_id, blob_id, max(size), count(*) FROM added WHERE backend = 'cas'
   GROUP BY instance_id, blob_id
   ORDER BY instance_id, blob_id
  ON CONFLICT (instance_id, sha256) DO UPDATE SET ref_count = blobs.ref_count + EXCLUDED.ref_count;
  RETURN NULL;
END;
$$;

DROP TRIGGER inodes_blob_refs_insert ON inodes;

CREATE TRIGGER inodes_blob_refs_insert AFTER INSERT ON inodes
  REFERENCING NEW TABLE AS added
  FOR EACH STATEMENT
  EXECUTE FUNCTION callfs_inodes_blob_refs_inserted();
