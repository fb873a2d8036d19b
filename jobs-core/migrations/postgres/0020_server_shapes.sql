-- The fingerprint of each job's data as the server's build declares it, as a JSON
-- object (name → fingerprint), so a server that cannot decode a payload knows whether
-- a live server of another build might. NULL on the row of a server of an older
-- release, which does not say.
ALTER TABLE jobs_server ADD COLUMN shapes TEXT;
