//! staffeln-api: the oslo.policy `http:` guard Cinder calls before
//! `backup:delete`, with its siblings: the tenants' listing of their automated
//! backups, health checks, a version document and Prometheus metrics.
//!
//! What lives here, from the floor up:
//! * pure: `request.rs` (ids, the guard's body, input shown in errors),
//!   `query.rs` (the listing's query), `decide.rs` ([`decide`], the
//!   guard's decision), [`error`] (every refusal → one status and body);
//! * state: [`ApiSettings`] (`settings.rs`, built and checked before the
//!   daemon starts), `caches.rs`, `counters.rs`, and `App` (`app.rs`),
//!   what every handler reads;
//! * handlers: [`guard`], [`backups`], `health.rs`, [`metrics`];
//! * `router.rs`, [`server`], and `daemon.rs` ([`start`], [`serve`]).
//!
//! In detail:
//! * [`server`]: the listener (plain or rustls), one hyper HTTP/1 connection
//!   task per client with a header-read timeout, and the graceful stop:
//!   accept no more, let open requests finish within `request_timeout`.
//! * `router.rs`: one `tracing` span per request with its id (`req-<uuid>`,
//!   returned as `x-openstack-request-id`), the body limit and the request
//!   timeout, dispatch by path and method, request counters.
//! * [`guard`]: `POST`/`GET /v1/backup`, the deletion guard. Its decision is a
//!   pure function ([`decide`]) of who asks (oslo.policy's
//!   credentials: Staffeln's own service user passes), what Cinder's target
//!   says about the backup, and what the database knows; it answers `True`
//!   to anyone else only on positive evidence that the backup is not an
//!   automated one, fails closed otherwise, and calls Cinder only for a
//!   request without a target. Backups known to be automated are cached
//!   briefly.
//! * [`backups`]: `GET /v1/backups`, a Keystone token's project's automated
//!   backups, filtered and paged.
//! * `health.rs` (`/v1/health`, `/healthcheck`, `/`), [`metrics`] (`/metrics`),
//!   [`error`] (every refusal → one status and body).
//!
//! It reads the database (`backup_data`, `queue_data`, `cycles`) and asks
//! Keystone (its own service user's id, tokens of listing requests) and Cinder
//! (guard requests without a target) through [`crate::openstack`]; it never
//! writes, and knows
//! nothing of AMQP or of the conductor's internals. The contract is the API
//! reference in `api-ref/source/`.
//!
//! The guard is unauthenticated (oslo.policy sends no token): listen on an
//! internal network, or serve HTTPS and restrict who can connect.

mod app;
pub mod backups;
mod caches;
mod counters;
mod daemon;
mod decide;
pub mod error;
pub mod guard;
mod health;
pub mod metrics;
mod query;
mod request;
mod router;
pub mod server;
mod settings;

pub use app::CloudError;
pub use daemon::{ApiHandle, serve, start};
pub use decide::{Basis, CinderLookup, DbLookup, Facts, Marking, Trust, Verdict, decide};
pub use query::{ListQuery, QueryError, parse_query, parse_time};
pub use request::{CheckRequest, IdError, backup_id, parse_request};
pub use server::ServeError;
pub use settings::{ApiSettings, TlsFiles};
