-- The directories of a subtree, without reading its files: what a recursive
-- listing hides from a caller (directories they may not open) is found from
-- these alone, however many files the tree holds.
CREATE INDEX inodes_directory_paths ON inodes (path) WHERE type = 'directory';
