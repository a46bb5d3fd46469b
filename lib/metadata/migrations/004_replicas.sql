-- Replicated CAS blobs. A blob's copies are its `blobs` rows that name an
-- image (image_id <> ''), one per instance holding it; reference counts stay
-- on the row of the instance a file entry names (its primary), and a copy is
-- collectable only while no row of the same content has a reference, so a
-- replica is kept exactly as long as some file names the content anywhere.

-- Copies of one content, and "is it referenced anywhere": one index probe.
CREATE INDEX blobs_by_sha256 ON blobs (sha256, instance_id);

-- The instances of the cluster as they report themselves (a heartbeat), and
-- what an operator decided about them: `draining` (copies are moved off, it
-- takes no new ones) or `forgotten` (declared lost: its copies no longer count).
CREATE TABLE cluster_instances (
  id          text PRIMARY KEY,
  url         text NOT NULL DEFAULT '',
  state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining', 'forgotten')),
  last_seen   timestamptz,
  used_bytes  bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
  free_bytes  bigint NOT NULL DEFAULT 0 CHECK (free_bytes >= 0),
  state_since timestamptz NOT NULL DEFAULT now()
);

-- Leases of cluster-wide singletons (the repairer): one owner at a time,
-- taken over by another instance once the owner stops renewing it.
CREATE TABLE cluster_leases (
  name       text PRIMARY KEY,
  owner      text NOT NULL,
  expires_at timestamptz NOT NULL
);

-- Blobs waiting to be copied to the S3 replica (ha.replication_enabled without
-- ha.require_replica_success): written before the PUT is acknowledged, removed
-- once the object is in the bucket, so a crash in between only delays the copy.
-- Each instance uploads the rows naming it, from its own CAS.
CREATE TABLE replica_outbox (
  instance_id text NOT NULL,
  sha256      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (instance_id, sha256)
);
