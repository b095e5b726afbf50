-- Schema version 12: clock_skew (placeholder, filled in by the change that needs it).
SELECT 1;
