-- Rates per concurrency key: a keyed job may carry how many jobs of its key may start
-- in any window (`#[job(concurrency_key = "…", rate = "10/1m")]`): the count, and the
-- window the claim counts starts over, in milliseconds (the rate's period plus the
-- start slack). The keyed claim counts and records the key's starts in
-- `jobs_rate_start` under the scope `key:<concurrency_key>` (through its index of
-- migration 23). A keyed job with a rate and no `concurrency` may run any number of
-- its key at once; a keyed row without either is never claimed, as before.
ALTER TABLE jobs_job ADD COLUMN rate_count INTEGER;
ALTER TABLE jobs_job ADD COLUMN rate_window_ms INTEGER;
