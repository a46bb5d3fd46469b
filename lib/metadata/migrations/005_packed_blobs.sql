-- Small CAS blobs packed into append-only segment files of their image
-- (issue 22): such a blob lives at (segment, seg_offset) of image_id, its
-- `size` bytes following a record header there. NULL for a blob that is a
-- file of its own. The CAS loads these locations when it opens; the segment
-- record (which names its sha256) is checked on every read.
ALTER TABLE blobs ADD COLUMN segment bigint, ADD COLUMN seg_offset bigint;
ALTER TABLE blobs ADD CONSTRAINT blobs_packed_location
  CHECK ((segment IS NULL) = (seg_offset IS NULL) AND (segment IS NULL OR (segment > 0 AND seg_offset >= 0)));
CREATE INDEX blobs_packed ON blobs (instance_id, sha256) WHERE segment IS NOT NULL;
