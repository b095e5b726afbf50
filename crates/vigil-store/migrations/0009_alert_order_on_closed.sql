-- Schema version 9: the alert lists' order kept only where it is stable.
--
-- Until now every event of an alert moved its row in four indexes: `alerts_by_updated`,
-- `alerts_open_by_updated` and `alerts_by_site` are ordered by `(updated_at, last_hlc, id)`
-- and `alerts_open_by_key` ended in `last_hlc`, and each event changes both. That was about
-- a fifth of a hub's ingest time. What changes with every event is the fold position of the
-- few alerts that are open; a closed alert no longer changes. So:
--
-- - the list order is indexed for closed alerts only (`alerts_closed_by_updated`,
--   `alerts_closed_by_site`): their history is where a list pages deep, and a row enters
--   them once, when its alert closes;
-- - open alerts are found by `alerts_open_by_key` (the open alert of a key; now on the key
--   alone) and by `alerts_open_by_site` (a site subtree), neither of which an event of an
--   open alert changes, and a list sorts the open alerts it matched;
-- - `alerts_open_by_origin` (the network tree's counts) stays as it is: it changes only when
--   an alert's state does.
--
-- The store's list query (`Store::query_alerts`) reads open and closed alerts apart and
-- merges them in the same `(updated_at, last_hlc, id)` order as before.
--
-- `events_by_hlc` goes too: it only served the greatest stamp of all events (a node's clock
-- resumes after it), which is also the greatest `last_hlc` of the alerts (`Store::max_hlc`).

DROP INDEX alerts_by_updated;
DROP INDEX alerts_open_by_updated;
DROP INDEX alerts_by_site;
DROP INDEX alerts_open_by_key;
DROP INDEX events_by_hlc;

CREATE INDEX alerts_open_by_key ON alerts (key) WHERE closed = 0;
CREATE INDEX alerts_open_by_site ON alerts (site) WHERE closed = 0;
CREATE INDEX alerts_closed_by_updated ON alerts (updated_at, last_hlc, id) WHERE closed = 1;
CREATE INDEX alerts_closed_by_site ON alerts (site, updated_at, last_hlc, id) WHERE closed = 1;
