//! Vigil link protocol.
