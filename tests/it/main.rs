//! The one integration-test binary: a module per room, against real peers
//! (MariaDB, SQLite files, RabbitMQ, the stock Python OpenStack libraries).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod assurance;
mod cinder_events;
mod conductor;
mod conf;
mod db;
mod deploy;
mod fakecloud;
mod fuzz;
mod horizon;
mod house;
mod notify;
mod openstack;
mod policy;
mod retention;
mod rpc;
mod rpcapi;
mod service;
mod simulated;
mod support;
mod upgrade;
mod worker;
