//! Staffeln: automated, policy-protected Cinder volume backups for OpenStack.
//!
//! The crate is split into rooms, one per concept; dependencies point one way
//! (DEVELOPERS.md has the full map; `tests/it/house.rs` checks it, and that
//! no files of one room import each other in a circle):
//!
//! ```text
//! cmd → service and the room it runs (service is handed the room, never imports it)
//! api → db, openstack, objects, conf, service
//! conductor → db, openstack, notify, rpc, objects, conf, service
//! notify → rpc, objects, conf       db, openstack, rpc → objects, conf
//! ceph, service → conf              objects, conf → std, serde, chrono only
//! ```
//!
//! * [`conf`]: oslo.config-compatible options, INI parsing, the sample file,
//!   and [`conf::SettingsError`], how every room refuses a value it cannot use.
//! * [`service`]: what every binary needs: configuration, the settings of the
//!   room it runs (checked before anything starts), oslo.log logging,
//!   signals, the error line at the edge.
//! * [`objects`]: plain domain data shared by every room, and Staffeln's
//!   metadata facts ([`objects::metadata`]).
//! * [`db`]: the database (MySQL/MariaDB or SQLite), migrations, queries.
//! * [`openstack`]: the Keystone, Nova and Cinder client; the only speaker of
//!   their JSON.
//! * [`conductor`]: its two halves, [`conductor::backup`] (discovery, plan,
//!   cycle, worker, digests) and [`conductor::retention`] (inventory, plan,
//!   run), the loops that drive them and the RPC topic.
//! * [`api`]: staffeln-api, the oslo.policy guard and its siblings.
//! * [`rpc`]: oslo.messaging over RabbitMQ (calls, casts, notifications).
//! * [`notify`]: per-project and operator backup digests by e-mail.
//! * [`ceph`]: Ceph pool compression settings through the `ceph` CLI.
//!
//! Beside this crate, in the same workspace: `staffeln-fakecloud`
//! (`fakecloud/`), the Keystone, Nova and Cinder emulator the tests and the
//! demo run against, which this library never contains; and
//! `staffeln-bench` (`bench/`), the benchmarks.

pub mod api;
pub mod ceph;
pub mod conductor;
pub mod conf;
pub mod db;
pub mod errors;
pub mod notify;
pub mod objects;
pub mod openstack;
pub mod rpc;
pub mod service;
