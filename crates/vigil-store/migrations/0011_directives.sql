-- Schema version 11: directives (placeholder, filled in by the change that needs it).
SELECT 1;
