//! Shared helpers for Vigil benches; the benches themselves are under `benches/`.
