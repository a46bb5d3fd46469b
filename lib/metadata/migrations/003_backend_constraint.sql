-- The backends an entry may name come from the backend registry
-- (lib/backends/registry.ts), not from a list written here: migrate.ts keeps
-- the constraint inodes_backend_known in step with it after every migration.
ALTER TABLE inodes DROP CONSTRAINT IF EXISTS inodes_backend_check;
