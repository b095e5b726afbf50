//! Enrollment, a node's side and the format both sides share (`docs/ARCHITECTURE.md#trust-model`):
//! a node (a gateway, or a hub joining its parent) exchanges a one-time token and a CSR for
//! its certificate, trusting the hub through the token's pin.
//!
//! | module | what it owns |
//! |---|---|
//! | [`token`] | the token `VGL1.<id>.<secret>.<pin>`: made, printed, parsed, looked up (hub and node alike); `--token -` |
//! | [`pinning`] | the TLS verifier that trusts the hub only through the pinned CA |
//! | [`client`] | `POST /api/v1/enroll`: its JSON, the request, the checks of the answer |
//! | [`config_file`] | the link's `url` written into the node's config file, comments kept |
//! | [`flow`] | the whole command: the checks before the token is spent, the key, the request, the files |
//!
//! `vigil-agent enroll` and `vigil-hub enroll` both call [`flow::enroll_node`]; the hub's
//! endpoint (`POST /api/v1/enroll`) parses and looks tokens up with [`token`].

pub mod client;
pub mod config_file;
pub mod flow;
pub mod pinning;
pub mod token;
