//! Test support: the moto server harness, the in-process emulator, the port contract suite and
//! the HTTP conformance suite, each runnable against every backend.

pub mod access;
pub mod audit;
pub mod backup;
pub mod breakdown;
pub mod chains;
pub mod cli_search;
pub mod cli_suite;
pub mod coldstart;
pub mod conformance;
pub mod contract;
pub mod faults;
pub mod feed;
pub mod fixtures;
pub mod health;
pub mod jobs;
pub mod limits;
pub mod link_guard;
pub mod load;
pub mod moto;
pub mod openapi;
pub mod pulumi;
pub mod ratelimit;
pub mod references;
pub mod rename;
pub mod resources;
pub mod search;
pub mod secrets;
pub mod server;
pub mod session;
pub mod sockets;
pub mod teams;
pub mod timeline;
pub mod tokens;
pub mod updates;
pub mod webhooks;
