//! Secrets at rest: a data folder only its owner can read, endpoint signing
//! secrets sealed under the main key (read back here from the raw files and
//! through SQLite itself), a wrong main key refused with nothing written,
//! the main key changed, several API keys at once, and a database from
//! before sealing sealed on its first start.

use lifecycle_e2e::{now, Lifecycle, Options, Receiver};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

fn create(event_id: &str, id: &str) -> Value {
    json!({"id": event_id, "type": "contract.create", "occurred_at": now(),
           "data": {"id": id, "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z"}})
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every byte of every file in the data folder but the main key's own.
fn folder_bytes(data: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "secret_key")
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The endpoint records and the meta rows, as SQLite (not the product) reads them.
fn stored(data: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open(data.join("lifecycle.db")).unwrap();
    let mut rows = Vec::new();
    for sql in [
        "SELECT id || ' ' || record FROM endpoints ORDER BY id",
        "SELECT name || ' ' || value FROM meta ORDER BY name",
    ] {
        let mut statement = db.prepare(sql).unwrap();
        let found = statement.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.extend(found.map(Result::unwrap));
    }
    rows
}

fn key_file(root: &Path, name: &str, hex_digit: char) -> String {
    let path = root.join(name);
    std::fs::write(&path, hex_digit.to_string().repeat(64)).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn the_data_folder_and_its_files_are_the_owners_only_under_umask_022() {
    let options = Options {
        umask: Some(0o022),
        stored_key: true,
        ..Options::default()
    };
    let app = Lifecycle::start(options).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["contract.create"]).await;
    app.events(&create("wr_1", "k_1")).await;
    receiver
        .expect(1, Duration::from_secs(5), "the webhook")
        .await;
    let data = app.data_dir();
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    let names: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "lifecycle.db",
        "lifecycle.db-wal",
        "lifecycle.db-shm",
        "lifecycle.lock",
        "api_key",
        "secret_key",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for name in &names {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
}

#[tokio::test]
async fn no_signing_secret_is_stored_in_the_clear_and_webhooks_still_verify() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    let (id, secret) = app.endpoint(&receiver.url(), &["contract.create"]).await;
    let (status, rotated) = app
        .post(
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    app.events(&create("wr_1", "k_1")).await;
    let got = receiver
        .expect(1, Duration::from_secs(5), "the webhook")
        .await;
    assert!(
        got[0].verify(&secret) && got[0].verify(&new),
        "{}",
        got[0].describe()
    );
    let data = app.data_dir();
    for (file, bytes) in folder_bytes(&data) {
        for s in [&secret, &new] {
            let key = s.trim_start_matches("whsec_");
            assert!(
                !contains(&bytes, key),
                "{file} holds a signing secret in the clear"
            );
        }
    }
    let rows = stored(&data);
    assert!(
        rows.iter()
            .any(|r| r.starts_with(&id) && r.contains("sealed:v1:")),
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_wrong_main_key_is_refused_with_nothing_written_and_the_key_can_be_changed() {
    let keys = tempfile::tempdir().unwrap();
    let first = key_file(keys.path(), "first", 'a');
    let second = key_file(keys.path(), "second", 'b');
    let options = Options {
        args: vec!["--secret-key-file".into(), first.clone()],
        ..Options::default()
    };
    let mut app = Lifecycle::start(options).await;
    let receiver = Receiver::start().await;
    let (_, secret) = app.endpoint(&receiver.url(), &["contract.create"]).await;
    app.kill9();
    let data = app.data_dir();
    let before = stored(&data);

    app.options_mut().args = vec!["--secret-key-file".into(), second.clone()];
    let (status, said) = app.restart_expecting_failure();
    assert!(!status.success());
    assert!(
        said.contains("main key") && said.contains("fingerprint"),
        "{said}"
    );
    assert_eq!(stored(&data), before, "nothing written under the wrong key");

    app.options_mut().args = vec![
        "--secret-key-file".into(),
        second,
        "--previous-secret-key-file".into(),
        first.clone(),
    ];
    app.restart().await;
    let after = stored(&data);
    assert_ne!(after, before, "sealed again under the new key");
    app.events(&create("wr_1", "k_1")).await;
    let got = receiver
        .expect(1, Duration::from_secs(5), "the webhook")
        .await;
    assert!(got[0].verify(&secret), "{}", got[0].describe());

    app.options_mut().args = vec!["--secret-key-file".into(), first];
    let (status, said) = app.restart_expecting_failure();
    assert!(!status.success(), "the old key no longer opens it: {said}");
}

#[tokio::test]
async fn two_api_keys_work_at_once_and_a_removed_one_is_refused() {
    let options = Options {
        args: vec!["--api-key".into(), "lk_second".into()],
        ..Options::default()
    };
    let mut app = Lifecycle::start(options).await;
    let get = |key: &str| {
        let request = reqwest::Client::new()
            .get(format!("{}/v1/notifications", app.base_url()))
            .bearer_auth(key);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(&app.key).await, 200);
    assert_eq!(get("lk_second").await, 200);
    assert_eq!(get("lk_secon").await, 401);
    assert_eq!(get("lk_second_").await, 401);
    app.options_mut().args.clear();
    app.restart().await;
    let get = |key: &str| {
        let request = reqwest::Client::new()
            .get(format!("{}/v1/notifications", app.base_url()))
            .bearer_auth(key);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get("lk_second").await, 401, "removed");
    assert_eq!(get(&app.key).await, 200);
}

#[tokio::test]
async fn a_database_with_plain_secrets_is_sealed_on_its_first_start() {
    let mut app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    let (id, secret) = app.endpoint(&receiver.url(), &["contract.create"]).await;
    app.kill9();
    let data = app.data_dir();
    // Back to the shape of a database from before sealing: the secret in
    // the clear, no meta table, no main key file, and (from before numbered
    // migrations too) user_version 0.
    {
        let db = rusqlite::Connection::open(data.join("lifecycle.db")).unwrap();
        let record: String = db
            .query_row("SELECT record FROM endpoints WHERE id = ?1", [&id], |r| {
                r.get(0)
            })
            .unwrap();
        let mut record: Value = serde_json::from_str(&record).unwrap();
        record["secrets"][0]["value"] = json!(secret);
        db.execute(
            "UPDATE endpoints SET record = ?2 WHERE id = ?1",
            rusqlite::params![id, record.to_string()],
        )
        .unwrap();
        db.execute_batch("DROP TABLE meta; PRAGMA user_version = 0")
            .unwrap();
    }
    std::fs::remove_file(data.join("secret_key")).unwrap();
    assert!(folder_bytes(&data)
        .iter()
        .any(|(_, b)| contains(b, &secret)));

    app.restart().await;
    app.events(&create("wr_1", "k_1")).await;
    let got = receiver
        .expect(1, Duration::from_secs(5), "the webhook")
        .await;
    assert!(got[0].verify(&secret), "{}", got[0].describe());
    let rows = stored(&data);
    assert!(rows.iter().all(|r| !r.contains(&secret)), "{rows:?}");
    assert!(
        rows.iter().any(|r| r.starts_with("main_key_fingerprint ")),
        "{rows:?}"
    );
}
