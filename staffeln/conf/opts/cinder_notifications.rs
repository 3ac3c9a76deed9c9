//! `[cinder_notifications]`: the conductor learns that a backup finished
//! from the notifications Cinder's backup service publishes
//! (`backup.create.end`), instead of waiting for its next list poll.

use super::{boolean, integer, string, unset_string};
use crate::conf::secret::Secret;

options! {
    /// Completion by events: Cinder's backup.create.end and
    /// backup.delete.end notifications, read from a queue of Staffeln's own.
    group "cinder_notifications" => CinderNotificationsOpts;

    /// Read Cinder's backup notifications. Cinder must publish them
    /// ([oslo_messaging_notifications] driver = messagingv2 in cinder.conf)
    /// to a broker Staffeln reaches. Staffeln reads them from its own queue
    /// (queue), bound to Cinder's exchange with the routing key
    /// <topic>.info, so that it never takes a message from the queue other
    /// listeners (Ceilometer) read. The backups are still listed every
    /// fallback_poll_interval, for failures (Cinder publishes no event when
    /// a backup fails) and events lost on the way.
    ///
    /// Related options:
    ///
    /// * transport_url
    /// * fallback_poll_interval
    enabled: bool = boolean(false);

    /// The broker Cinder publishes its notifications to (Cinder's
    /// [oslo_messaging_notifications] transport_url, else its [DEFAULT]
    /// transport_url). Unset: Staffeln's [oslo_messaging_notifications]
    /// transport_url, else its [DEFAULT] transport_url.
    transport_url: Option<Secret> = unset_string().secret();

    /// The exchange Cinder publishes to: Cinder's [DEFAULT]
    /// control_exchange, openstack unless changed.
    exchange: String = string("openstack");

    /// The notification topic Cinder publishes to (one of Cinder's
    /// [oslo_messaging_notifications] topics); its INFO notifications are
    /// routed with the key <topic>.info.
    topic: String = string("notifications");

    /// Staffeln's own queue, bound to exchange with the key <topic>.info
    /// (a listener pool, in oslo.messaging's words). The conductors share
    /// it, so that each event is handled once. It must not be <topic>.info,
    /// the queue Ceilometer and other listeners read: a consumer there takes
    /// their messages. The broker deletes it after
    /// [oslo_messaging_rabbit] rabbit_transient_queues_ttl seconds without
    /// a consumer, so a removed Staffeln leaves nothing filling up.
    queue: String = string("staffeln-cinder-notifications");

    /// Seconds between two list polls of the backups being created, and of
    /// the backups a retention run is deleting, while Cinder's notifications
    /// arrive (one arrived within this time); [conductor] poll_interval
    /// otherwise. The poll finds the backups that failed (no event) and the
    /// ones whose event was lost.
    ///
    /// Related options:
    ///
    /// * [conductor] poll_interval
    fallback_poll_interval: u64 = integer(120).min(1);
}
