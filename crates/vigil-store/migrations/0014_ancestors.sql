-- Schema version 14: this hub's ancestors (docs/ARCHITECTURE.md#site-bindings-and-admission).
--
-- Its [parent] node (depth 1) and the hubs above it, as `vigil-hub enroll` learned them
-- from the parent's answer, reconciled at every start with the [parent] CA certificate's
-- common name. No child may speak as any of them: an event, action or audit record whose
-- origin is an ancestor is refused (`ancestor_origin`). Empty on a hub with no parent.
CREATE TABLE ancestors (
    depth INTEGER PRIMARY KEY CHECK (depth >= 1),
    node  TEXT    NOT NULL UNIQUE
);
