//! `GET /api/openapi.json`: the API description, as committed in `docs/openapi.json`.
//!
//! The document is generated from the route table by `cargo run -p stackhouse-infra --bin
//! openapi` (a test fails when the committed file is stale), and embedded here as is: serving it
//! needs no port and no generator code in the function binary.

use bytes::Bytes;

use crate::api::{Ctx, Reply};
use crate::error::Result;

/// The committed document, byte for byte.
pub const DOCUMENT: &str = include_str!("../../../../docs/openapi.json");

/// `GET /api/openapi.json`.
pub async fn get(_ctx: Ctx) -> Result<Reply> {
    Ok(Reply::raw_json(Bytes::from_static(DOCUMENT.as_bytes())))
}
