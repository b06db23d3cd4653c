-- Step 7: nothing reads or writes name any more.
-- depends: 20261201_03_title-not-null
ALTER TABLE recipes DROP COLUMN name;
