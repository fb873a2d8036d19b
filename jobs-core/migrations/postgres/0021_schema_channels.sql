-- The name of a wake-up channel for the jobs of this schema. Notifications are per
-- database, so two applications whose tables live in schemas of their own on one
-- database would wake each other's servers on one fixed name: outside `public`, the
-- channel carries the schema's name. In `public` it stays the plain name, which servers
-- of older releases listen on.
CREATE OR REPLACE FUNCTION jobs_channel(base text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN current_schema() IS NULL OR current_schema() = 'public' THEN base
                ELSE base || '.' || current_schema() END
$$;
