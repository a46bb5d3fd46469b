-- CallFS metadata schema, version 1: the namespace (inodes), the CAS blob index
-- and single-use links. Applied in one transaction by lib/metadata/migrate.ts.

CREATE TABLE inodes (
  id          bigserial PRIMARY KEY,
  -- "C" collation: byte order for listings, and range predicates on the
  -- unique index (path >= p || '/' AND path < p || '0') for subtrees.
  path        text COLLATE "C" NOT NULL,
  parent_id   bigint REFERENCES inodes (id),
  name        text COLLATE "C" NOT NULL,
  -- Number of segments: 0 for '/', 1 for '/a'. Bounds recursive listings.
  depth       integer NOT NULL CHECK (depth >= 0),
  type        text NOT NULL CHECK (type IN ('file', 'directory')),
  -- Files sort before directories in listings; a stored column so that the
  -- keyset index below can serve (type_order, name) > ($1, $2).
  type_order  smallint GENERATED ALWAYS AS (CASE WHEN type = 'file' THEN 0 ELSE 1 END) STORED,
  size        bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
  mode        integer NOT NULL CHECK (mode BETWEEN 0 AND 4095),
  uid         bigint NOT NULL CHECK (uid >= 0),
  gid         bigint NOT NULL CHECK (gid >= 0),
  atime       timestamptz NOT NULL DEFAULT now(),
  mtime       timestamptz NOT NULL DEFAULT now(),
  ctime       timestamptz NOT NULL DEFAULT now(),
  backend     text CHECK (backend IN ('cas', 's3')),
  instance_id text,
  blob_id     text,
  etag        text,
  version     bigint NOT NULL DEFAULT 1,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT inodes_path_key UNIQUE (path),
  CONSTRAINT inodes_only_root_has_no_parent CHECK ((parent_id IS NULL) = (path = '/')),
  CONSTRAINT inodes_directory_has_no_bytes CHECK (
    type = 'file' OR (backend IS NULL AND instance_id IS NULL AND blob_id IS NULL AND etag IS NULL AND size = 0)),
  -- Reference counting keys on (instance_id, blob_id): a CAS file must name both.
  CONSTRAINT inodes_cas_file_names_its_blob CHECK (
    backend IS DISTINCT FROM 'cas' OR (instance_id IS NOT NULL AND blob_id IS NOT NULL))
);

-- Keyset listing of a directory: files first, then directories, each by name.
CREATE INDEX inodes_children ON inodes (parent_id, type_order, name);

CREATE TABLE blobs (
  instance_id      text NOT NULL,
  sha256           text NOT NULL,
  -- '' until the CAS records where the bytes live (a row may first be created
  -- by the reference-count trigger).
  image_id         text NOT NULL DEFAULT '',
  size             bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
  -- Never clamped: a count going below zero is a bug that must fail loudly
  -- rather than let the collector delete bytes that are still referenced.
  ref_count        bigint NOT NULL DEFAULT 0 CHECK (ref_count >= 0),
  created_at       timestamptz NOT NULL DEFAULT now(),
  touched_at       timestamptz NOT NULL DEFAULT now(),
  last_verified_at timestamptz,
  quarantined      boolean NOT NULL DEFAULT false,
  PRIMARY KEY (instance_id, sha256)
);

CREATE INDEX blobs_collectable ON blobs (instance_id, touched_at) WHERE ref_count = 0;
CREATE INDEX blobs_scrub_order ON blobs (instance_id, last_verified_at NULLS FIRST, sha256);

-- Keeps blobs.ref_count equal to the number of 'cas' inodes naming the blob,
-- inside the writing transaction, whatever statement changed the inodes
-- (single deletes, recursive deletes, replacements, re-pointing updates).

-- Inserts and blob-changing updates touch one row per statement: row triggers.
CREATE FUNCTION callfs_inodes_blob_refs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.backend = 'cas' THEN
    UPDATE blobs
       SET ref_count = ref_count - 1,
           touched_at = CASE WHEN ref_count = 1 THEN now() ELSE touched_at END
     WHERE instance_id = OLD.instance_id AND sha256 = OLD.blob_id;
  END IF;
  IF NEW.backend = 'cas' THEN
    INSERT INTO blobs (instance_id, sha256, size, ref_count)
    VALUES (NEW.instance_id, NEW.blob_id, NEW.size, 1)
    ON CONFLICT (instance_id, sha256) DO UPDATE SET ref_count = blobs.ref_count + 1;
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER inodes_blob_refs_insert AFTER INSERT ON inodes
  FOR EACH ROW WHEN (NEW.backend = 'cas')
  EXECUTE FUNCTION callfs_inodes_blob_refs();

-- "UPDATE OF" plus WHEN: an update that does not assign or change the blob
-- columns (renames, moves of whole subtrees, chmod) queues no trigger event.
CREATE TRIGGER inodes_blob_refs_update AFTER UPDATE OF backend, instance_id, blob_id ON inodes
  FOR EACH ROW WHEN (
    (OLD.backend = 'cas' OR NEW.backend = 'cas') AND (
      OLD.backend IS DISTINCT FROM NEW.backend OR
      OLD.instance_id IS DISTINCT FROM NEW.instance_id OR
      OLD.blob_id IS DISTINCT FROM NEW.blob_id))
  EXECUTE FUNCTION callfs_inodes_blob_refs();

-- A recursive delete removes many rows in one statement, often naming the same
-- blob (every empty file shares one): one decrement per distinct blob per
-- statement, not one per row, which would rewrite the same blobs row
-- thousands of times in one transaction (quadratic in PostgreSQL). Rows are
-- locked in key order so that concurrent deletes do not deadlock each other.
CREATE FUNCTION callfs_inodes_blob_refs_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM blobs b
    JOIN (SELECT DISTINCT instance_id, blob_id FROM removed WHERE backend = 'cas') r
      ON b.instance_id = r.instance_id AND b.sha256 = r.blob_id
    ORDER BY b.instance_id, b.sha256
    FOR UPDATE OF b;
  UPDATE blobs b
     SET ref_count = b.ref_count - r.n,
         touched_at = CASE WHEN b.ref_count = r.n THEN now() ELSE b.touched_at END
    FROM (SELECT instance_id, blob_id, count(*) AS n FROM removed WHERE backend = 'cas' GROUP BY instance_id, blob_id) r
   WHERE b.instance_id = r.instance_id AND b.sha256 = r.blob_id;
  RETURN NULL;
END;
$$;

CREATE TRIGGER inodes_blob_refs_delete AFTER DELETE ON inodes
  REFERENCING OLD TABLE AS removed
  FOR EACH STATEMENT
  EXECUTE FUNCTION callfs_inodes_blob_refs_deleted();

CREATE TABLE single_use_links (
  id         text PRIMARY KEY,
  path       text NOT NULL,
  created_by bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at    timestamptz
);

CREATE INDEX single_use_links_expires_at ON single_use_links (expires_at);
CREATE INDEX single_use_links_used_at ON single_use_links (used_at) WHERE used_at IS NOT NULL;

-- The root: owned by root, world-writable with the sticky bit (like /tmp).
INSERT INTO inodes (path, parent_id, name, depth, type, size, mode, uid, gid)
VALUES ('/', NULL, '', 0, 'directory', 0, 1023, 0, 0);
