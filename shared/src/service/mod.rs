//! Domain logic, written once against the ports.

pub mod access;
pub mod admin;
pub mod artifacts;
pub mod audit;
pub mod backup;
pub mod call_records;
pub mod deflate;
pub mod delta;
pub mod deploy;
pub mod deployments;
pub mod env;
pub mod environments;
pub mod events;
pub mod feed;
pub mod health;
pub mod history;
pub mod identity;
pub mod inflate;
pub mod item_keys;
pub mod journal;
pub mod journal_intake;
pub mod limits;
pub mod materialise;
pub mod members;
pub mod optimistic;
pub mod packages;
pub mod policy_packs;
#[cfg(test)]
mod properties;
pub mod ratelimit;
pub mod reaper;
pub mod references;
pub mod rename;
pub mod resources;
pub mod retention;
pub mod search;
pub mod secrets;
pub mod stack_search;
pub mod stacks;
pub mod teams;
pub mod templates;
pub mod timeline;
pub mod tokens;
pub mod updates;
pub mod urn;
pub mod webhook_deliveries;
pub mod webhooks;

/// A fresh random identifier (128 bits, hex): stack ids, update ids, request ids.
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}
