-- Schema version 10: node_bindings (placeholder, filled in by the change that needs it).
SELECT 1;
