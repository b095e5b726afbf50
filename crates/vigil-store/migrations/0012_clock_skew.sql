-- Schema version 12: clock skew (docs/ARCHITECTURE.md#clocks-and-skew).
--
-- `clock_guard` is this node's own setting (one row), set by a hub at start from
-- `[link] max_clock_skew`: an event a child sends stamped further ahead of this node's wall
-- clock than `max_skew_ms` is clamped to this node's clock when its batch is applied (the
-- original stamp kept in the event), and the clamped copy is queued back down to the child
-- on the outbox `echo_prefix || child` in the same transaction. `max_skew_ms` NULL: no
-- guard (an agent; a hub before it first starts with this version).
CREATE TABLE clock_guard (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    max_skew_ms INTEGER CHECK (max_skew_ms >= 0),
    echo_prefix TEXT    NOT NULL DEFAULT ''
);

INSERT INTO clock_guard (id, max_skew_ms, echo_prefix) VALUES (1, NULL, '');
