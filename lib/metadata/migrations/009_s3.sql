-- The S3-compatible API (issue 25).

-- What S3 clients expect of an object beyond the file: the ETag they check
-- (the MD5 of the bytes, or md5-of-part-md5s-N for a multipart upload), the
-- Content-Type and x-amz-meta-* given at the upload. Recorded for the
-- content named by sha256: once the file changes (through /v1 or WebDAV),
-- the row no longer applies and the object's ETag is its SHA-256.
CREATE TABLE s3_objects (
  inode_id      bigint PRIMARY KEY REFERENCES inodes (id) ON DELETE CASCADE,
  sha256        text NOT NULL,
  etag          text NOT NULL,
  content_type  text NOT NULL DEFAULT '',
  meta          jsonb NOT NULL DEFAULT '{}'
);

-- Multipart uploads: the parts are files on the instance that holds the
-- upload (instance_id) until CompleteMultipartUpload writes the object.
CREATE TABLE s3_multipart (
  id            text PRIMARY KEY,
  uid           bigint NOT NULL CHECK (uid >= 0),
  bucket        text COLLATE "C" NOT NULL,
  key           text COLLATE "C" NOT NULL,
  instance_id   text NOT NULL,
  content_type  text NOT NULL DEFAULT '',
  meta          jsonb NOT NULL DEFAULT '{}',
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX s3_multipart_bucket ON s3_multipart (bucket, key);

CREATE TABLE s3_parts (
  upload_id    text NOT NULL REFERENCES s3_multipart (id) ON DELETE CASCADE,
  part_number  integer NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
  size         bigint NOT NULL CHECK (size >= 0),
  md5          text NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (upload_id, part_number)
);
