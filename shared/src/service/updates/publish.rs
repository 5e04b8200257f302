//! Publishing what an update stored as the stack's next version: its last checkpoint, or its
//! journal replayed onto the stack's deployment.

use sha2::{Digest, Sha256};

use crate::app::App;
use crate::error::Result;
use crate::service::deployments::{self, Summary};
use crate::service::journal::Encoded;
use crate::service::stacks;

use super::model::Update;

/// What publishing an update produced.
pub(super) struct Published {
    /// The stack's deployment from now on (None: the stack still has none).
    pub key: Option<String>,
    /// Its summary.
    pub summary: Summary,
    /// Part of the journal could not be applied: the update must not count as a success.
    pub degraded: bool,
    /// Bytes stored for the new version (gzip; 0 when nothing was published).
    pub bytes: u64,
}

impl Published {
    /// The stack keeps the deployment it has (nothing to publish, or nothing publishable).
    pub(super) fn unchanged(stack: &stacks::Stack, degraded: bool) -> Published {
        Published {
            key: stack.deployment_key.clone(),
            summary: Summary { resource_count: stack.resource_count.unwrap_or(0) },
            degraded,
            bytes: 0,
        }
    }
}

/// Copies the update's last checkpoint to the immutable key of `version` and summarises it. An
/// update that checkpointed nothing keeps the stack's current deployment.
pub(super) async fn publish_checkpoint(
    app: &App,
    update: &Update,
    stack: &stacks::Stack,
    version: i64,
) -> Result<Published> {
    let blobs = app.ports.blobs.as_ref();
    if update.journal {
        return publish_journal(app, update, stack, version).await;
    }
    if let Some(chain) = &update.checkpoint_chain {
        let key = deployments::version_key(&update.stack_id, version);
        let raw =
            super::chain::read(blobs, &app.checkpoints, &update.id, update.checkpoint_seq, chain)
                .await?;
        let summary = deployments::check_untyped(&raw, 1..=4)?;
        // The last save stored the state whole: publish that blob as it is.
        let gz = match chain.base == update.checkpoint_seq {
            true => {
                blobs.get(&super::chain::full_key(&update.id, chain.base, &chain.base_hash)).await?
            }
            false => None,
        };
        let gz = match gz {
            Some(gz) => gz,
            None => deployments::gzip(&raw)?,
        };
        let bytes = gz.len() as u64;
        blobs.put(&key, gz).await?;
        app.checkpoints.forget(&update.id);
        return Ok(Published { key: Some(key), summary, degraded: false, bytes });
    }
    match blobs.get(&deployments::checkpoint_key(&update.id)).await? {
        Some(gz) => {
            let raw = deployments::gunzip(&gz)?;
            let summary = deployments::check_untyped(&raw, 1..=4)?;
            // A full checkpoint is stored as its request: the deployment once more without the
            // request's `isInvalid` flag. A verbatim one is the deployment's exact bytes.
            let gz = match deployments::checkpoint_request(&raw)? {
                Some(env) => deployments::gzip(&deployments::untyped(
                    env.version,
                    env.features.as_deref(),
                    env.deployment,
                )?)?,
                None => gz,
            };
            let key = deployments::version_key(&update.stack_id, version);
            let bytes = gz.len() as u64;
            blobs.put(&key, gz).await?;
            Ok(Published { key: Some(key), summary, degraded: false, bytes })
        }
        None => Ok(Published::unchanged(stack, false)),
    }
}

/// Replays the update's journal onto the stack's deployment (from the newest materialised
/// snapshot when there is one) and publishes the result.
pub(super) async fn publish_journal(
    app: &App,
    update: &Update,
    stack: &stacks::Stack,
    version: i64,
) -> Result<Published> {
    let blobs = app.ports.blobs.as_ref();
    // The stack's deployment is still the one the update started from: nothing else may
    // change it while the update holds (or held, until this ends it) the stack's lease.
    // A journal the replayer rejects must not leave the stack unusable (every later update
    // would fail finalising this one), so replay is best effort: each entry is applied on its
    // own, a rejected one is logged and skipped, and the update is then recorded as failed.
    // The stored batches stay in the blob store for inspection.
    let crate::service::materialise::Replay { replayer, mut degraded } =
        crate::service::materialise::replay(app, update, stack.deployment_key.as_deref()).await?;
    if replayer.buffered() > 0 {
        tracing::error!(update = %update.id, held = replayer.buffered(), "journal has gaps; entries after the first gap were not applied");
        degraded = true;
    }
    if replayer.last_sequence() == 0 {
        // Nothing journaled (or nothing usable): the state is unchanged.
        return Ok(Published::unchanged(stack, degraded));
    }
    let manifest = manifest(&update.cli_version, app.clock.now());
    let Encoded { version: schema, features, deployment } = match replayer.into_encoded(manifest) {
        Ok(generated) => generated,
        Err(e) => {
            tracing::error!(update = %update.id, error = %e, "journal snapshot failed; state left unchanged");
            return Ok(Published::unchanged(stack, true));
        }
    };
    let bytes = deployments::untyped(schema, Some(&features), &deployment)?;
    let summary = deployments::check_untyped(&bytes, 3..=4)?;
    let key = deployments::version_key(&update.stack_id, version);
    let gz = deployments::gzip(&bytes)?;
    let stored = gz.len() as u64;
    blobs.put(&key, gz).await?;
    Ok(Published { key: Some(key), summary, degraded, bytes: stored })
}

/// A fresh deployment manifest, as the CLI writes one: time, CLI version and its SHA-256 magic.
pub(super) fn manifest(cli_version: &str, now: i64) -> serde_json::Value {
    let time = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.max(0) as u64),
    );
    serde_json::json!({
        "time": time.to_string(),
        "magic": hex::encode(Sha256::digest(cli_version.as_bytes())),
        "version": cli_version,
    })
}
