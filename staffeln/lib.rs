//! Staffeln: automated, policy-protected Cinder volume backups for OpenStack.
//!
//! The crate is split into rooms, one per concept; dependencies point one way
//! (see DEVELOPERS.md for the full map):
//!
//! ```text
//! cmd → service → {api, conductor, fakecloud}
//! conductor → {db, openstack, notify, rpc}     api → {db, openstack}
//! db, openstack, notify, rpc → {objects, conf}
//! objects, conf → std, serde, chrono only      fakecloud → its own JSON shapes
//! ```
//!
//! * [`conf`]: oslo.config-compatible options, INI parsing, the sample file.
//! * [`service`]: what every binary needs: configuration, oslo.log logging,
//!   signals, the error line at the edge.
//! * [`objects`]: plain domain data shared by every room.
//! * [`db`]: the database (MySQL/MariaDB or SQLite), migrations, queries.
//! * [`openstack`]: the Keystone, Nova and Cinder client; the only speaker of
//!   their JSON.
//! * [`conductor`]: discovery, planning, the shared task queue, backups.
//! * [`api`]: staffeln-api, the oslo.policy guard and its siblings.
//! * [`rpc`]: oslo.messaging over RabbitMQ (calls, casts, notifications).
//! * [`notify`]: per-project and operator backup digests by e-mail.
//! * [`fakecloud`]: an in-process emulator of the Keystone, Nova and Cinder
//!   subset Staffeln uses, for tests and the demo.
//! * [`ceph`]: Ceph pool compression settings through the `ceph` CLI.

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
