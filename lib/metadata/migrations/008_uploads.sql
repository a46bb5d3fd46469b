-- Resumable uploads (tus 1.0, issue 24). The bytes received so far are a
-- file on the instance that holds the upload (instance_id); this row is how
-- far they go, where the file will appear, who may continue it, and until
-- when. Any instance can answer for an upload; it sends the bytes on to the
-- holder.
CREATE TABLE uploads (
  id           text PRIMARY KEY,
  -- The user who created it: only they may see, continue or end it.
  uid          bigint NOT NULL CHECK (uid >= 0),
  -- Where the file appears once the last byte arrives, and its mode (null: the default).
  path         text COLLATE "C" NOT NULL,
  mode         integer CHECK (mode BETWEEN 0 AND 4095),
  length       bigint NOT NULL CHECK (length >= 0),
  -- Bytes received and flushed to the holder's disk.
  received     bigint NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= length),
  -- Upload-Metadata as the client sent it (returned on HEAD).
  metadata     text NOT NULL DEFAULT '',
  instance_id  text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);

CREATE INDEX uploads_uid ON uploads (uid);
CREATE INDEX uploads_expiry ON uploads (instance_id, expires_at);
