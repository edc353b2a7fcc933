//! The data folder: made readable by its owner only, and the keys it keeps
//! when none are given (`api_key`, one API key per line; `secret_key`, the
//! main key that seals endpoint secrets), each generated on first start
//! into a file only its owner can read, whatever the umask.

use lifecycle_core::api::ApiKeys;
use lifecycle_core::sealing::MainKey;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

type Result<T> = std::result::Result<T, String>;

fn failed(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// Makes the folder `0700`; one that exists with wider modes is left as it
/// is, with a warning that names the fix.
pub fn create(data: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data)
        .map_err(failed(data))?;
    let mode = std::fs::metadata(data)
        .map_err(failed(data))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            "the data folder {} is open to other users (mode {mode:03o}): its database holds \
             webhooks and its key files the API keys; run `chmod 700 {}`",
            data.display(),
            data.display()
        );
    }
    Ok(())
}

/// Creates `path` readable and writable by its owner only (whatever the
/// umask), or narrows an existing one to that. SQLite gives its WAL and
/// shared-memory files the database file's mode.
pub fn private_file(path: &Path) -> Result<()> {
    std::fs::File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(failed(path))?;
    let mode = std::fs::metadata(path)
        .map_err(failed(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(failed(path))?;
    }
    Ok(())
}

/// The file's text; made from `make` (mode `0600`) when there is none.
fn kept(path: &Path, make: impl FnOnce() -> String) -> Result<(String, bool)> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            private_file(path)?;
            return Ok((text, false));
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(path)(e)),
        Err(_) => {}
    }
    let text = make();
    let mut file = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(failed(path))?;
    file.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failed(path))?;
    Ok((text, true))
}

/// The API keys of `api_key`, one per line; one is generated on first start.
pub fn api_keys(data: &Path) -> Result<ApiKeys> {
    let path = data.join("api_key");
    let (text, made) = kept(&path, || lifecycle_core::ids::random_id("lk"))?;
    if made {
        println!(
            "generated API key {} (stored in {})",
            text.trim(),
            path.display()
        );
    }
    let keys = ApiKeys::from_text(&text);
    if keys.is_empty() {
        return Err(format!(
            "{}: no API key in it (one per line)",
            path.display()
        ));
    }
    Ok(keys)
}

/// The main key of `secret_key`, generated on first start.
pub fn main_key(data: &Path) -> Result<MainKey> {
    let path = data.join("secret_key");
    let (text, made) = kept(&path, || MainKey::generate().to_text())?;
    if made {
        // A log line, not output: the first line a process prints is its address.
        tracing::info!(
            "generated the main key that seals signing secrets (stored in {}; keep a copy apart from the database's backups)",
            path.display()
        );
    }
    MainKey::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}
