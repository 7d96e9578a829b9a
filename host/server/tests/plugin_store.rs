//! Uploaded plugins live in object storage: two hosts with their own
//! state directories share an S3 plugin store (the test S3 server), so a
//! plugin one host took is there on the other, for its tenant only, and
//! bytes in the store that do not hash to their name are refused; a
//! host kept before the store has its plugins taken in.

mod common;

use std::collections::BTreeMap;

use common::{Client, host_file, redact_job, start};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const BUCKET: &str = "sluice-test";

/// The S3 endpoint of the test services.
fn s3_endpoint() -> String {
    std::env::var("SLUICE_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("SLUICE_TEST_S3_ENDPOINT is not set; run `eval $(scripts/services env)` after `scripts/services start`")
    })
}

/// The host file's options that reach the test S3 server.
fn s3_options() -> BTreeMap<String, String> {
    [
        ("aws_endpoint", s3_endpoint()),
        ("aws_region", "us-east-1".into()),
        ("aws_access_key_id", "test".into()),
        ("aws_secret_access_key", "test".into()),
        ("aws_allow_http", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[test]
fn hosts_sharing_a_plugin_store_share_each_tenants_plugins_and_refuse_tampered_ones() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("plugin-store-{}-{nanos}", std::process::id());
    let first_state = tempfile::tempdir().unwrap();
    let second_state = tempfile::tempdir().unwrap();
    let (mut config, a, b) = host_file(first_state.path());
    config.plugin_store = Some(format!("s3://{BUCKET}/{prefix}"));
    config.plugin_store_options = s3_options();

    // The first host takes the plugin into the store.
    let first = start(&config);
    let digest = Client::new(&first).push_redact(&a);
    first.shut_down().unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap();

    let s3 = AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_endpoint(s3_endpoint())
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_allow_http(true)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stored = runtime
        .block_on(async {
            s3.get(&Path::from(format!("{prefix}/{hex}.wasm")))
                .await?
                .bytes()
                .await
        })
        .expect("the plugin in the store");
    assert_eq!(hex::encode(Sha256::digest(&stored)), hex);

    // A second host, with a state directory of its own, finds it: for
    // tenant a, who can run it, and not for b.
    config.state = second_state.path().to_owned();
    let second = start(&config);
    let client = Client::new(&second);
    let (_, plugins) = client.get("/v1/plugins", Some(&a));
    assert_eq!(plugins["plugins"][0], digest.as_str(), "{plugins}");
    let (_, plugins) = client.get("/v1/plugins", Some(&b));
    assert_eq!(plugins["plugins"], Value::Array(vec![]), "{plugins}");
    let id = client.submit(&a, &redact_job("shared", &digest, ""));
    client.checkpoint_after(&a, &id, None);
    let (status, refused) = client.post(
        "/v1/jobs",
        Some(&b),
        redact_job("theirs", &digest, "").as_bytes(),
    );
    assert_eq!(status, 400, "{refused}");

    // Bytes in the store under a digest they do not have are not run.
    let claimed = hex::encode(Sha256::digest(b"another plugin"));
    runtime.block_on(async {
        s3.put(
            &Path::from(format!("{prefix}/{claimed}.wasm")),
            PutPayload::from(std::fs::read(sluice_plugin_artifacts::PII_REDACT).unwrap()),
        )
        .await
        .unwrap();
        s3.put(
            &Path::from(format!("{prefix}/tenants/a/{claimed}")),
            PutPayload::default(),
        )
        .await
        .unwrap();
    });
    let (status, refused) = client.post(
        "/v1/jobs",
        Some(&a),
        redact_job("tampered", &format!("sha256:{claimed}"), "").as_bytes(),
    );
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("holds other bytes"),
        "{refused}"
    );
    second.shut_down().unwrap();
}

#[test]
fn plugins_kept_in_the_old_state_layout_are_taken_into_the_store() {
    let state = tempfile::tempdir().unwrap();
    let (config, a, b) = host_file(state.path());
    // A host of before the plugin store: the bytes in STATE/plugins, and
    // tenant a's mark in STATE/tenants/a/plugins.
    let bytes = std::fs::read(sluice_plugin_artifacts::PII_REDACT).unwrap();
    let hex = hex::encode(Sha256::digest(&bytes));
    std::fs::create_dir_all(state.path().join("plugins")).unwrap();
    std::fs::write(state.path().join(format!("plugins/{hex}.wasm")), &bytes).unwrap();
    let old_marks = state.path().join("tenants/a/plugins");
    std::fs::create_dir_all(&old_marks).unwrap();
    std::fs::write(old_marks.join(&hex), b"").unwrap();

    let server = start(&config);
    let client = Client::new(&server);
    let digest = format!("sha256:{hex}");
    let (_, plugins) = client.get("/v1/plugins", Some(&a));
    assert_eq!(plugins["plugins"], json!([digest]), "{plugins}");
    let (_, plugins) = client.get("/v1/plugins", Some(&b));
    assert_eq!(plugins["plugins"], json!([]), "{plugins}");
    let id = client.submit(&a, &redact_job("adopted", &digest, ""));
    client.checkpoint_after(&a, &id, None);
    assert!(
        !old_marks.exists(),
        "the old marks are removed once taken in"
    );
    server.shut_down().unwrap();
}
