//! The MQTT source.
