-- Create the ingredients of a recipe.
-- depends: 20261130_01_create-recipes
CREATE TABLE ingredients (
    recipe_id bigint NOT NULL REFERENCES recipes (id) ON DELETE CASCADE,
    name text NOT NULL,
    quantity text NOT NULL,
    PRIMARY KEY (recipe_id, name)
);
