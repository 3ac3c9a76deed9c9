//! Every option, defined once. One file per group; [`options!`] turns each
//! file into the typed group struct (what code reads), a [`GroupDef`] (what
//! the loader, the validation, the sample and the tests read), and the glue
//! between them. Adding a group is one new file here plus one line in the
//! `groups!` list at the bottom of this file.

mod def;

pub use def::{
    CliFlag, DefaultValue, GroupDef, OptDef, ValueSource, boolean, computed_string, dict, duration, field, integer,
    list, multi_string, port, string, unset_integer, unset_string,
};

use crate::conf::error::ConfigError;
use crate::conf::types::Value;

/// Defines one group: its struct, its [`GroupDef`] as `GROUP`, and the glue.
///
/// ```ignore
/// options! {
///     /// Options for the staffeln-api HTTP listener.
///     group "api" => ApiOpts;
///
///     /// TCP port staffeln-api listens on.
///     port: u16 = port(8808);
/// }
/// ```
macro_rules! options {
    (
        $(#[doc = $gdoc:literal])*
        group $gname:literal => $Struct:ident;
        $(
            $(#[doc = $doc:literal])*
            $field:ident : $ty:ty = $def:expr;
        )*
    ) => {
        $(#[doc = $gdoc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $Struct {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        /// The definition of this group, read by the loader and the sample.
        pub const GROUP: $crate::conf::opts::GroupDef = $crate::conf::opts::GroupDef {
            name: $gname,
            help_lines: &[$($gdoc),*],
            opts: &[ $( ($def).named(stringify!($field), &[$($doc),*]), )* ],
        };

        impl $Struct {
            /// Builds the struct from resolved values.
            pub fn from_source(
                src: &dyn $crate::conf::opts::ValueSource,
            ) -> Result<Self, $crate::conf::ConfigError> {
                Ok($Struct {
                    $( $field: $crate::conf::opts::field(src, $gname, stringify!($field))?, )*
                })
            }

            /// Copies the options marked mutable from `new`.
            pub fn apply_mutable(&mut self, new: &Self) {
                $(
                    if GROUP.opt(stringify!($field)).is_some_and(|o| o.mutable) {
                        self.$field = new.$field.clone();
                    }
                )*
            }

            /// Every option's value, in definition order.
            pub fn values(&self) -> Vec<(&'static str, $crate::conf::types::Value)> {
                use $crate::conf::types::OptField as _;
                vec![ $( (stringify!($field), self.$field.to_value()), )* ]
            }
        }
    };
}

/// Declares the group modules and builds [`Config`] and the registry.
macro_rules! groups {
    ($($module:ident :: $Struct:ident),* $(,)?) => {
        $( pub mod $module; pub use $module::$Struct; )*

        /// The whole configuration: one field per group, named like the group
        /// (`default` is `[DEFAULT]`).
        #[derive(Debug, Clone, PartialEq)]
        pub struct Config {
            $( pub $module: $Struct, )*
        }

        /// Every group, `[DEFAULT]` first.
        pub static REGISTRY: &[GroupDef] = &[ $( $module::GROUP, )* ];

        impl Config {
            /// Builds the configuration from resolved values.
            pub fn from_source(src: &dyn ValueSource) -> Result<Config, ConfigError> {
                Ok(Config { $( $module: $Struct::from_source(src)?, )* })
            }

            /// Copies the options marked mutable from `new` (SIGHUP).
            pub fn apply_mutable(&mut self, new: &Config) {
                $( self.$module.apply_mutable(&new.$module); )*
            }

            /// `(group, [(option, value)])` for every group, registry order.
            pub fn values(&self) -> Vec<(&'static str, Vec<(&'static str, Value)>)> {
                vec![ $( ($module::GROUP.name, self.$module.values()), )* ]
            }
        }
    };
}

groups! {
    default::DefaultOpts,
    api::ApiOpts,
    conductor::ConductorOpts,
    database::DatabaseOpts,
    openstack::OpenStackOpts,
    notification::NotificationOpts,
    coordination::CoordinationOpts,
    ceph_compression::CephCompressionOpts,
    oslo_messaging_rabbit::OsloMessagingRabbitOpts,
    oslo_messaging_notifications::OsloMessagingNotificationsOpts,
    cinder_notifications::CinderNotificationsOpts,
}
