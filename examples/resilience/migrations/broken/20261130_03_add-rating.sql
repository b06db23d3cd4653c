-- Add a rating to recipes, with an index. The index names a column that does
-- not exist (a typo): the second statement fails after the first succeeded.
-- depends: 20261130_02_create-ingredients
ALTER TABLE recipes ADD COLUMN rating smallint;
CREATE INDEX recipes_rating ON recipes (ratng);
