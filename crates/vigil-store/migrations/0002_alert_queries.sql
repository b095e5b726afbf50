-- Schema version 2: what the console and the API filter, page and count alerts by.
--
-- Virtual generated columns expose the parts of the folded view (`view`, an AlertView as
-- JSON) that an alert's ISA-18.2 state depends on, so a list filtered by state is narrowed in
-- SQL instead of decoding every view. They are computed when read, never stored, so the
-- writers of `alerts` are unchanged and existing rows need no rewrite. A view that is not
-- valid JSON (damaged; the next event of its alert rebuilds it) reads as NULL here rather
-- than failing the query; the reader skips the row when it cannot decode the view.

-- The node that raised the alert: the first segment of its key `origin/source/kind`.
ALTER TABLE alerts ADD COLUMN origin TEXT
    GENERATED ALWAYS AS (CASE WHEN instr(key, '/') > 1 THEN substr(key, 1, instr(key, '/') - 1) END) VIRTUAL;
-- The shelf's end as RFC 3339 text with milliseconds (`2026-11-29T12:00:00.000Z`): fixed
-- width, so it compares as text like the instant it names.
ALTER TABLE alerts ADD COLUMN shelved_until TEXT
    GENERATED ALWAYS AS (CASE WHEN json_valid(view) THEN json_extract(view, '$.shelved_until') END) VIRTUAL;
ALTER TABLE alerts ADD COLUMN suppressed INTEGER
    GENERATED ALWAYS AS (CASE WHEN json_valid(view) THEN json_extract(view, '$.suppressed') END) VIRTUAL;
ALTER TABLE alerts ADD COLUMN out_of_service INTEGER
    GENERATED ALWAYS AS (CASE WHEN json_valid(view) THEN json_extract(view, '$.out_of_service') END) VIRTUAL;
-- A latching alert that activated and has not been reset since.
ALTER TABLE alerts ADD COLUMN awaiting_reset INTEGER
    GENERATED ALWAYS AS (CASE WHEN json_valid(view)
        THEN json_extract(view, '$.latching') AND json_extract(view, '$.needs_reset') END) VIRTUAL;

-- The console's default list: open alerts, most recently updated first.
CREATE INDEX alerts_open_by_updated ON alerts (updated_at, last_hlc, id) WHERE closed = 0;
-- Lists scoped to a site subtree (a range scan on the path, then the same order).
CREATE INDEX alerts_by_site ON alerts (site, updated_at, last_hlc, id);
-- The network tree's counts of open alerts per origin node and site.
CREATE INDEX alerts_open_by_origin ON alerts (origin, site, severity, active, acknowledged)
    WHERE closed = 0;
