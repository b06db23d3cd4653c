-- Step 5: every row has a title and every writer sets it, so enforce it;
-- name becomes optional, so the next code may stop writing it.
-- depends: 20261201_02_backfill-title
ALTER TABLE recipes ALTER COLUMN title SET NOT NULL;
ALTER TABLE recipes ALTER COLUMN name DROP NOT NULL;
