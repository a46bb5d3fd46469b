-- WebDAV state (issue 23), kept in the metadata store so that every instance
-- of a cluster sees the same properties and locks.

-- Dead properties (PROPPATCH): any namespace and name, the value as the XML
-- of the property element's content. They belong to the inode: a move keeps
-- them, a delete drops them.
CREATE TABLE dav_properties (
  inode_id  bigint NOT NULL REFERENCES inodes (id) ON DELETE CASCADE,
  ns        text NOT NULL,
  name      text NOT NULL,
  value     text NOT NULL,
  PRIMARY KEY (inode_id, ns, name)
);

-- Write locks (LOCK/UNLOCK). A lock names a path, not an inode: RFC 4918
-- locks a URL, and a MOVE or DELETE of the locked resource ends the lock.
-- Expired rows are ignored by every query and purged on the next LOCK.
CREATE TABLE dav_locks (
  token       text PRIMARY KEY,
  path        text COLLATE "C" NOT NULL,
  -- 'infinity' locks the whole tree below a collection.
  deep        boolean NOT NULL,
  shared      boolean NOT NULL,
  -- The client's DAV:owner element, kept as sent (XML), or ''.
  owner       text NOT NULL DEFAULT '',
  -- The user who took it: only they (and root) may use or remove it.
  uid         bigint NOT NULL CHECK (uid >= 0),
  timeout_s   integer NOT NULL CHECK (timeout_s > 0),
  expires_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX dav_locks_path ON dav_locks (path);
