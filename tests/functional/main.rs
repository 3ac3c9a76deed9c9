//! The functional tier: Staffeln's binaries against real Keystone, Cinder and
//! Nova (and Placement, the Neutron API) that `tools/functional-env up` runs
//! on loopback. A missing environment fails every scenario with the command
//! that starts it; scenarios run one at a time (.config/nextest.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cloud;
mod drill;
mod events;
mod horizon;
mod scenarios;
#[allow(dead_code)]
#[path = "../it/support.rs"]
mod support;
