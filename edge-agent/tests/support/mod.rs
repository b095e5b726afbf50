//! Test support shared by the agent's integration tests.
pub mod modbus_server;
