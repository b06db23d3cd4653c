-- Step 1 of renaming recipes.name to title: a new, nullable column.
-- The running code does not know it exists, and does not need to.
-- depends: 20261130_01_create-recipes
ALTER TABLE recipes ADD COLUMN title text;
