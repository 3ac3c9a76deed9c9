//! Staffeln's client for Keystone v3, Nova v2.1 and Cinder v3: the only code
//! in the project that knows their JSON. Everything it returns is plain
//! [`crate::objects`] data; everything it fails with is an [`OpenStackError`]
//! carrying status, method, URL, request id and the service's own message.
//!
//! ## Shape
//! * [`OpenStack`] (`client.rs`) is the facade: cheap to clone, one HTTP
//!   client and one token cache shared by all clones. [`OpenStack::connect`] authenticates
//!   once (so bad credentials fail at start-up);
//!   [`OpenStack::for_project`] gives a handle acting in another project,
//!   with a token scoped there (the service user needs a role in that
//!   project, e.g. `admin`, directly or inherited from the domain; an
//!   application credential is bound to its own project and cannot do this).
//!   **Backups must be created through the handle of the volume's project**
//!   so Cinder owns and counts them there.
//! * `keystone.rs`, `nova.rs`, `cinder.rs`: one `impl OpenStack` block per
//!   service on top of `client.rs`'s call pipeline, each call one method. Listings are [`ItemStream`]s that follow
//!   the services' `next` links page by page.
//! * `auth.rs` (credentials, tokens per project), `clouds.rs` (clouds.yaml and
//!   secure.yaml), `catalog.rs` (catalog lookup, URL templates, version
//!   documents, microversion negotiation), `retry.rs` (the pure retry
//!   schedule), `http.rs` (one exchange with retries), `error.rs`,
//!   `settings.rs` ([`Settings`], [`Secret`]), and the private `wire.rs`
//!   (JSON shapes → objects).
//!
//! ## Configuration
//! [`Settings`] mirrors the `[openstack]` options. With `cloud` set, the
//! entry of that name is read from the first clouds.yaml found
//! (`OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`, `~/.config/openstack/clouds.yaml`,
//! `/etc/openstack/clouds.yaml`), with secure.yaml merged over it. YAML is
//! parsed with the small `serde_yaml_ng` crate; authentication is written
//! here. `openstack_sdk` (gtema/openstack) was weighed and not taken: it
//! brings ~250 crates (4.5 min clean release build on 2 cores, including an
//! interactive-prompt crate and a generic config loader), and its client owns
//! the request pipeline Staffeln must control itself (per-project tokens,
//! retries with Retry-After and skip codes, typed errors with request ids).
//! Staffeln calls 14 endpoints, so owning them is cheaper than adapting it.
//!
//! ## Endpoints and microversions
//! Endpoints come from the token's catalog by service type (`compute`;
//! `block-storage` also as `volumev3`, `block-store`, `volume`), interface and
//! region, or from a clouds.yaml `*_endpoint_override` (with
//! `%(project_id)s` filled in). Each token carries the catalog of its own
//! project, so Cinder's `/v3/{project_id}` URLs are always the right ones for
//! the handle's project. The version document of each endpoint is read once
//! (unauthenticated first, then with the token on 401) and the microversion
//! is negotiated against its maximum:
//! * Cinder: **3.64** when offered, otherwise the cloud's maximum, but at
//!   least **3.43** (Pike): 3.43 brings backup `metadata` in create and show,
//!   which Staffeln uses to mark its backups; 3.18 (backup `project_id` for
//!   admins) comes with it. 3.64 is what openstacksdk/OSC use for backups, so
//!   it is the best-trodden path. `availability_zone` on create needs 3.51;
//!   asking for it on an older cloud fails before sending.
//! * Nova: **2.1**. Every field Staffeln reads (`tenant_id`, `metadata`,
//!   `os-extended-volumes:volumes_attached`) and the metadata calls exist
//!   there; later versions only add fields Staffeln ignores, and from 2.69 on
//!   servers in a down cell come back as partial records without metadata or
//!   volumes, which would look like servers with nothing to protect.
//!
//! A cloud whose maximum is below the minimum fails with
//! [`OpenStackError::TooOld`] naming the service, URL and both versions.
//!
//! ## Retries
//! See `retry.rs`: 5xx, 429/503 (honouring `Retry-After`), connection errors
//! and timeouts are retried with full-jitter exponential backoff, each wait
//! capped by `max_retry_interval` and all of them by `retry_timeout`; never a
//! code in `skip_retry_codes` (404) nor another 4xx. A backup create is
//! retried only when the cloud surely did not act (no connection, 429, 503).
//! Every exchange is logged at debug with its `x-openstack-request-id`.
//! Tokens and passwords appear in no log line and no error.

mod auth;
pub mod catalog;
mod cinder;
mod client;
pub mod clouds;
mod error;
mod http;
mod keystone;
pub mod notifications;
mod nova;
pub mod retry;
mod settings;
mod wire;

pub use catalog::{Microversion, ServiceType};
pub use cinder::{BackupFilter, BackupRequest, Restore};
pub use client::{CINDER_MICROVERSION, CINDER_MIN_MICROVERSION, ItemStream, NOVA_MICROVERSION, OpenStack};
pub use clouds::SearchPaths;
pub use error::OpenStackError;
pub use notifications::{BackupEvent, BackupEventKind, BadBackupEvent, backup_event};
pub use settings::{Interface, Secret, Settings, parse_status_codes};
