//! `[oslo_messaging_notifications]`: where Staffeln's event notifications
//! (`staffeln.backup.create.end`, …) go.

use super::{list, multi_string, unset_string};
use crate::conf::secret::Secret;

options! {
    /// Options of oslo.messaging's notifier.
    group "oslo_messaging_notifications" => OsloMessagingNotificationsOpts;

    /// The driver(s) to handle sending notifications. Nothing is sent (and no
    /// connection is opened) without one.
    ///
    /// Possible values:
    ///
    /// * messagingv2: the oslo.messaging 2.0 envelope, what stock listeners
    ///   read
    /// * log: one log line per notification
    /// * noop: nothing
    driver: Vec<String> = multi_string();

    /// A URL representing the messaging driver to use for notifications. If
    /// not set, we fall back to the same configuration used for RPC.
    ///
    /// Related options:
    ///
    /// * [DEFAULT] transport_url
    transport_url: Option<Secret> = unset_string().secret();

    /// AMQP topic used for OpenStack notifications.
    topics: Vec<String> = list("notifications").deprecated(&[("rpc_notifier2", "topics"), ("DEFAULT", "notification_topics")]);
}
