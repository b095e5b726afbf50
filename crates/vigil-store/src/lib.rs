//! Vigil storage.
