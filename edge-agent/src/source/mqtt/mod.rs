//! The MQTT source (being written).
