//! Where `admin export` writes and `admin import` reads: a directory of plain files, or an S3
//! prefix (`s3://bucket/prefix`) on the AWS endpoint and credentials the emulator is given.
//! Both hold the same files (`stackhouse::service::backup`).

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use stackhouse::service::backup::{Archive, BlobArchive};
use stackhouse::Error;

/// A directory: one file per export file, written to a temporary name and renamed, so a reader
/// never sees half a file.
pub struct DirArchive {
    root: PathBuf,
}

impl DirArchive {
    /// The archive rooted at `root` (created on the first write).
    pub fn new(root: &Path) -> DirArchive {
        DirArchive { root: root.to_path_buf() }
    }

    fn path(&self, name: &str) -> Result<PathBuf, Error> {
        let plain = !name.is_empty()
            && name.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !plain {
            return Err(Error::BadRequest(format!("{name:?} is not a file name of an export")));
        }
        Ok(name.split('/').fold(self.root.clone(), |p, seg| p.join(seg)))
    }
}

fn io(what: String, e: std::io::Error) -> Error {
    Error::Unavailable(format!("{what}: {e}"))
}

#[async_trait::async_trait]
impl Archive for DirArchive {
    async fn write(&self, name: &str, body: Bytes) -> Result<(), Error> {
        let path = self.path(name)?;
        tokio::task::spawn_blocking(move || {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).map_err(|e| io(format!("create {}", dir.display()), e))?;
            let tmp = path.with_extension(format!("tmp-{:016x}", rand_suffix()));
            let mut f = std::fs::File::create(&tmp)
                .map_err(|e| io(format!("create {}", tmp.display()), e))?;
            f.write_all(&body)
                .and_then(|()| f.sync_all())
                .map_err(|e| io(format!("write {}", tmp.display()), e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io(format!("rename to {}", path.display()), e))
        })
        .await
        .map_err(|e| Error::caused("file task failed", e))?
    }

    async fn read(&self, name: &str) -> Result<Option<Bytes>, Error> {
        let path = self.path(name)?;
        match tokio::fs::read(&path).await {
            Ok(body) => Ok(Some(Bytes::from(body))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(format!("read {}", path.display()), e)),
        }
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}

/// The archive a `--to`/`--from` argument names: `s3://bucket/prefix` or a directory.
pub async fn open(target: &str, config: &crate::Config) -> Result<Arc<dyn Archive>, Error> {
    match target.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::BadRequest(format!("{target} names no bucket")));
            }
            let acfg = crate::aws_config(config);
            let blobs = stackhouse::adapters::aws::blobs_in_bucket(&acfg, bucket).await;
            Ok(Arc::new(BlobArchive::new(blobs, prefix, target)))
        }
        None => Ok(Arc::new(DirArchive::new(Path::new(target)))),
    }
}
