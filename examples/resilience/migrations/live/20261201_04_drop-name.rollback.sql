ALTER TABLE recipes ADD COLUMN name text;
UPDATE recipes SET name = title;
