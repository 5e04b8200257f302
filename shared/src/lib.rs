//! Stackhouse: a self-hosted, serverless backend for the Pulumi CLI.
//!
//! Layout (docs/ARCHITECTURE.md, Crates and layers): `api` (route table, request parsing,
//! responses, errors, auth), `service` (domain logic), `jobs` (job table and consumers), `ports`
//! (traits) and `adapters` (embedded and AWS).

pub mod adapters;
pub mod api;
pub mod apitype;
pub mod app;
pub mod config;
pub mod console;
pub mod error;
#[cfg(test)]
mod fixtures;
pub mod jobs;
#[cfg(test)]
mod layering;
pub mod names;
pub mod ports;
pub mod service;
pub mod telemetry;

pub use app::App;
pub use error::Error;
