//! Backup digests by e-mail: after each backup cycle, every project that had
//! backups gets one digest of all of them (successful or not, with its
//! skipped volumes and its Cinder backup quotas), and the operator may get
//! one digest of all projects.
//!
//! The conductor hands this room plain data ([`ProjectBackups`], built from
//! the DB and OpenStack) and marks a project's results reported only when
//! its digest returns `Ok`; this room never touches the DB or OpenStack.
//!
//! * [`digest`] (pure): results + quotas + `now` → [`Digest`], the view model
//!   with counts, colour bands ([`colour_band`]) and the subject.
//! * [`receivers`] (pure): who gets a digest — `receiver`, else
//!   `<project>@project_receiver_domain`, else the project members; the
//!   operator digest goes to `admin_receiver`.
//! * [`render`]: the built-in askama templates (`templates/digest.html` and
//!   `digest.txt`, compiled in) or the operator's Jinja2 `template_file`
//!   (minijinja, HTML part only), falling back to the built-in one on any
//!   error in it.
//! * [`settings`]: [`NotifySettings`], `[notification]` read and checked by
//!   [`NotifySettings::from_config`] before the conductor starts (a sender
//!   that is not an address is refused there, naming the option).
//! * [`mail`]: the edge — lettre SMTP (`none`/`starttls`/`tls`, optional
//!   login, timeout), or with no `sender_email` the log plus an HTML file in
//!   `report_dir`.
//!
//! Template variables: the operator template sees one variable, `digest`,
//! the serialized [`Digest`]:
//!
//! ```text
//! digest.subject, digest.backup_time ("2026-11-25 16:14:48 UTC")
//! digest.scope.kind ("project" | "operator"), digest.scope.project_id, digest.scope.project_name
//! digest.counts.{succeeded, failed, skipped}
//! digest.projects[]: project_id, project_name, counts.{succeeded, failed, skipped},
//!   quotas[]: resource ("backups" | "backup_gigabytes"), label, known, unlimited,
//!             limit, used, percent (numbers or none), limit_text, used_text,
//!             percent_text, band ("green" | "yellow" | "red" | none when unknown)
//!   volumes[]: server, server_id, volume, volume_id, backup_name, backup_id,
//!              kind ("full" | "incremental"), size_gb, success, band
//!              ("green" | "red"), fail_reason
//!   skipped[]: server, server_id, volume, volume_id, reason
//! ```
//!
//! `doc/notify-template.md` documents the same for operators.

pub mod digest;
pub mod mail;
pub mod receivers;
pub mod render;
pub mod settings;

pub use digest::{
    BackupKind, BackupResult, Band, Counts, Digest, ProjectAssurance, ProjectBackups, Quota, RpoMiss, Scope,
    SkippedVolume, UnstampedServer, colour_band, operator_digest, project_digest,
};
pub use mail::{CycleOutcome, Delivery, DeliveryMethod, MailError, Mailer, ProjectOutcome};
pub use receivers::{ReceiverSource, Recipients, needs_member_emails, operator_receivers, project_receivers};
pub use render::{Rendered, TemplateError};
pub use settings::{NotifySettings, SmtpSecurity};
