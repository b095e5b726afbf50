-- Schema version 13: a token names the kind of node it enrolls
-- (docs/ARCHITECTURE.md#site-bindings-and-admission).
--
-- `vigil-hub enroll-token --kind hub|gateway` (default gateway): the enrollment endpoint
-- refuses a request whose `"kind"` differs, so a node does not choose its own kind — a
-- gateway holding a token cannot enroll as a hub and then speak for nodes below it.
-- Tokens from before this version enroll a gateway.
ALTER TABLE enrollment_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'gateway'
    CHECK (kind IN ('hub', 'gateway'));
