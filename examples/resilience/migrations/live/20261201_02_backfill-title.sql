-- Step 3: copy name into title for the rows written before the dual-write,
-- 1000 rows per transaction, so no lock is held for long and the requests
-- keep flowing. Not transactional: the block commits after each batch.
-- transactional: false
-- depends: 20261201_01_add-title
DO $$
DECLARE
    copied integer;
BEGIN
    LOOP
        UPDATE recipes SET title = name
        WHERE id IN (SELECT id FROM recipes WHERE title IS NULL LIMIT 1000);
        GET DIAGNOSTICS copied = ROW_COUNT;
        EXIT WHEN copied = 0;
        COMMIT;
    END LOOP;
END
$$;
