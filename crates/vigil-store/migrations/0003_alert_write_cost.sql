-- Schema version 3: what writing an alert costs, for the hub's ingest rate.
--
-- The state columns of version 2 (`shelved_until`, `suppressed`, `out_of_service`,
-- `awaiting_reset`) were virtual columns generated from the view's JSON. SQLite computes every
-- generated column of a row on each write of it, so each alert written parsed its view
-- several times over (a fifth of a hub's ingest time). They become plain columns that the
-- writer of the view (`save_view`) fills from the same view, with the same values; the rows
-- already here are filled from their views below, by the expressions version 2 used.
--
-- `peak_severity` is the highest severity any stored event of the alert gave it (its raises,
-- and the value updates that set one), `NULL` when none did: the writer keeps it as events
-- arrive, so an escalation policy that asks for it does not re-read the alert's history.

ALTER TABLE alerts DROP COLUMN shelved_until;
ALTER TABLE alerts DROP COLUMN suppressed;
ALTER TABLE alerts DROP COLUMN out_of_service;
ALTER TABLE alerts DROP COLUMN awaiting_reset;

ALTER TABLE alerts ADD COLUMN shelved_until TEXT;
ALTER TABLE alerts ADD COLUMN suppressed INTEGER;
ALTER TABLE alerts ADD COLUMN out_of_service INTEGER;
ALTER TABLE alerts ADD COLUMN awaiting_reset INTEGER;
-- No CHECK on it: an `IN (…)` check builds a temporary table on every write of the row. A
-- value the reader does not know makes it refold the alert's events instead.
ALTER TABLE alerts ADD COLUMN peak_severity TEXT;

UPDATE alerts SET
    shelved_until = CASE WHEN json_valid(view) THEN json_extract(view, '$.shelved_until') END,
    suppressed = CASE WHEN json_valid(view) THEN json_extract(view, '$.suppressed') END,
    out_of_service = CASE WHEN json_valid(view) THEN json_extract(view, '$.out_of_service') END,
    awaiting_reset = CASE WHEN json_valid(view)
        THEN json_extract(view, '$.latching') AND json_extract(view, '$.needs_reset') END,
    peak_severity = (
        SELECT CASE max(CASE json_extract(e.body, '$.body.severity')
                            WHEN 'info' THEN 0 WHEN 'warning' THEN 1 WHEN 'minor' THEN 2
                            WHEN 'major' THEN 3 WHEN 'critical' THEN 4 END)
                   WHEN 0 THEN 'info' WHEN 1 THEN 'warning' WHEN 2 THEN 'minor'
                   WHEN 3 THEN 'major' WHEN 4 THEN 'critical' END
        FROM events AS e
        WHERE e.alert = alerts.id
          AND e.kind IN ('raised', 'value_updated')
          AND json_valid(e.body)
    );
