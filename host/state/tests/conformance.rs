//! The checkpoint store's behaviours, each run against every backend: a
//! local directory, memory, and S3 (the moto server that
//! `scripts/services start` runs; `SLUICE_TEST_S3_ENDPOINT`).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::json;
use sluice_state::{CheckpointStore, StateError};

/// A backend: the raw store (for the tests to tear and corrupt epochs
/// behind the checkpoint store's back) and the prefix the checkpoints use.
struct Backend {
    raw: Arc<dyn ObjectStore>,
    root: Path,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    fn checkpoints(&self) -> CheckpointStore {
        CheckpointStore::from_store(Arc::clone(&self.raw), self.root.clone(), "test")
    }

    fn epoch_file(&self, epoch: u64, name: &str) -> Path {
        self.root
            .clone()
            .join(format!("epoch-{epoch:020}"))
            .join(name)
    }

    /// The object that holds file `name` of committed `epoch`.
    async fn object_of(&self, epoch: u64, name: &str) -> Path {
        let manifest = self.checkpoints().read(epoch).await.unwrap().manifest;
        let entry = manifest.files.iter().find(|f| f.name == name).unwrap();
        self.epoch_file(epoch, &entry.object)
    }

    /// Every object of `epoch`, committed or not.
    async fn objects_of(&self, epoch: u64) -> Vec<Path> {
        let prefix = self.root.clone().join(format!("epoch-{epoch:020}"));
        self.raw
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .unwrap()
    }
}

fn local() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    Backend {
        raw: Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap()),
        root: Path::default(),
        _dir: Some(dir),
    }
}

fn memory() -> Backend {
    Backend {
        raw: Arc::new(InMemory::new()),
        root: Path::default(),
        _dir: None,
    }
}

const BUCKET: &str = "sluice-test";

/// The S3 endpoint of the test services.
fn s3_endpoint() -> String {
    std::env::var("SLUICE_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("SLUICE_TEST_S3_ENDPOINT is not set; run `eval $(scripts/services env)` after `scripts/services start`")
    })
}

/// Options that reach the test S3 server.
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

/// A prefix no other test (or earlier run) uses.
fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("conformance-{}-{nanos}", std::process::id())
}

fn s3() -> Backend {
    let raw = AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_endpoint(s3_endpoint())
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_allow_http(true)
        .build()
        .unwrap();
    Backend {
        raw: Arc::new(raw),
        root: Path::parse(unique_prefix()).unwrap(),
        _dir: None,
    }
}

fn files(epoch: u64) -> Vec<(String, Bytes)> {
    vec![
        ("window-state".into(), Bytes::from(vec![epoch as u8; 1000])),
        (
            "positions".into(),
            Bytes::from(format!("offsets of epoch {epoch}")),
        ),
    ]
}

async fn commit_then_read_gives_back_the_files_and_metadata(backend: Backend) {
    let store = backend.checkpoints();
    assert!(store.latest().await.unwrap().is_none());
    store
        .commit(7, files(7), json!({ "plan": "abc" }))
        .await
        .unwrap();
    let checkpoint = store.latest().await.unwrap().unwrap();
    assert_eq!(checkpoint.epoch(), 7);
    assert_eq!(checkpoint.manifest.metadata, json!({ "plan": "abc" }));
    for (name, bytes) in files(7) {
        assert_eq!(checkpoint.file(&name), Some(&bytes), "{name}");
    }
    assert_eq!(store.committed().await.unwrap(), [7]);
}

async fn an_epoch_commits_once(backend: Backend) {
    let store = backend.checkpoints();
    store.commit(1, files(1), json!(1)).await.unwrap();
    let objects = backend.objects_of(1).await.len();
    let again = store.commit(1, files(2), json!(2)).await.unwrap_err();
    assert!(
        matches!(again, StateError::AlreadyCommitted { epoch: 1, .. }),
        "{again}"
    );
    let checkpoint = store.read(1).await.unwrap();
    assert_eq!(checkpoint.manifest.metadata, json!(1));
    assert_eq!(checkpoint.file("window-state"), Some(&files(1)[0].1));
    assert_eq!(
        backend.objects_of(1).await.len(),
        objects,
        "the refused commit wrote files"
    );
}

async fn a_losing_attempt_never_overwrites_the_winners_files(backend: Backend) {
    let store = backend.checkpoints();
    // Two attempts at epoch 1 race; the second writes its files after the
    // first's and only then finds the manifest taken.
    let (first, second) = (backend.checkpoints(), backend.checkpoints());
    let (a, b) = tokio::join!(
        first.commit(1, files(1), json!("first")),
        second.commit(1, files(2), json!("second")),
    );
    let winner = match (a, b) {
        (Ok(_), Err(StateError::AlreadyCommitted { .. })) => files(1),
        (Err(StateError::AlreadyCommitted { .. }), Ok(_)) => files(2),
        other => panic!("not exactly one winner: {other:?}"),
    };
    let checkpoint = store.read(1).await.unwrap();
    for (name, bytes) in winner {
        assert_eq!(checkpoint.file(&name), Some(&bytes), "{name}");
    }
}

async fn a_torn_epoch_is_ignored_and_can_be_written_again(backend: Backend) {
    let store = backend.checkpoints();
    store.commit(1, files(1), json!(1)).await.unwrap();
    // Epoch 2's data, but the process died before its manifest.
    backend
        .raw
        .put(
            &backend.epoch_file(2, "window-state"),
            PutPayload::from(vec![9u8; 10]),
        )
        .await
        .unwrap();
    assert_eq!(store.committed().await.unwrap(), [1]);
    assert_eq!(store.latest().await.unwrap().unwrap().epoch(), 1);
    assert!(matches!(
        store.read(2).await,
        Err(StateError::Missing { epoch: 2, .. })
    ));
    // The restarted job writes epoch 2 for real.
    store.commit(2, files(2), json!(2)).await.unwrap();
    let checkpoint = store.latest().await.unwrap().unwrap();
    assert_eq!(checkpoint.epoch(), 2);
    assert_eq!(checkpoint.file("window-state"), Some(&files(2)[0].1));
}

async fn a_corrupt_epoch_is_reported_and_never_replaced_by_an_older_one(backend: Backend) {
    let store = backend.checkpoints();
    store.commit(1, files(1), json!(1)).await.unwrap();
    store.commit(2, files(2), json!(2)).await.unwrap();
    let path = backend.object_of(2, "window-state").await;
    let mut bytes = backend
        .raw
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    bytes[500] ^= 1;
    backend
        .raw
        .put(&path, PutPayload::from(bytes))
        .await
        .unwrap();
    let error = store.latest().await.unwrap_err();
    assert!(
        matches!(&error, StateError::Corrupt { epoch: 2, reason, .. } if reason.contains("window-state")),
        "{error}"
    );
    // A file the manifest lists is gone.
    let positions = backend.object_of(1, "positions").await;
    backend.raw.delete(&positions).await.unwrap();
    let error = store.read(1).await.unwrap_err();
    assert!(
        matches!(&error, StateError::Corrupt { epoch: 1, reason, .. } if reason.contains("missing")),
        "{error}"
    );
    // A manifest that is not one.
    backend
        .raw
        .put(
            &backend.epoch_file(3, "MANIFEST"),
            PutPayload::from("{ not json"),
        )
        .await
        .unwrap();
    let error = store.latest().await.unwrap_err();
    assert!(
        matches!(error, StateError::Corrupt { epoch: 3, .. }),
        "{error}"
    );
}

async fn retain_keeps_the_newest_epochs_and_clears_torn_ones(backend: Backend) {
    let store = backend.checkpoints();
    for epoch in 1..=5 {
        store
            .commit(epoch, files(epoch), json!(epoch))
            .await
            .unwrap();
    }
    // A torn epoch among them, and one after the newest (still being written).
    backend
        .raw
        .put(&backend.epoch_file(3, "extra"), PutPayload::from("x"))
        .await
        .unwrap();
    backend
        .raw
        .delete(&backend.epoch_file(3, "MANIFEST"))
        .await
        .unwrap();
    backend
        .raw
        .put(
            &backend.epoch_file(6, "window-state"),
            PutPayload::from("y"),
        )
        .await
        .unwrap();
    let deleted = store.retain(2).await.unwrap();
    assert_eq!(deleted, [1, 2, 3]);
    assert_eq!(store.committed().await.unwrap(), [4, 5]);
    for epoch in [1, 2, 3] {
        let left = backend.objects_of(epoch).await;
        assert!(left.is_empty(), "epoch {epoch} still has {left:?}");
    }
    assert_eq!(
        backend.objects_of(4).await.len(),
        3,
        "a kept epoch lost files"
    );
    assert!(
        backend
            .raw
            .head(&backend.epoch_file(6, "window-state"))
            .await
            .is_ok()
    );
    assert_eq!(store.read(4).await.unwrap().manifest.metadata, json!(4));
}

/// One test per behaviour and backend.
macro_rules! conformance {
    ($($behaviour:ident),* $(,)?) => {
        mod local_directory { $( #[tokio::test] async fn $behaviour() { super::$behaviour(super::local()).await } )* }
        mod in_memory { $( #[tokio::test] async fn $behaviour() { super::$behaviour(super::memory()).await } )* }
        mod s3 { $( #[tokio::test] async fn $behaviour() { super::$behaviour(super::s3()).await } )* }
    };
}

conformance!(
    commit_then_read_gives_back_the_files_and_metadata,
    an_epoch_commits_once,
    a_losing_attempt_never_overwrites_the_winners_files,
    a_torn_epoch_is_ignored_and_can_be_written_again,
    a_corrupt_epoch_is_reported_and_never_replaced_by_an_older_one,
    retain_keeps_the_newest_epochs_and_clears_torn_ones,
);

#[tokio::test]
async fn open_reaches_each_kind_of_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoints/job");
    let store = CheckpointStore::open(path.to_str().unwrap(), &BTreeMap::new()).unwrap();
    store.commit(1, files(1), json!(null)).await.unwrap();
    assert!(path.join("epoch-00000000000000000001/MANIFEST").is_file());

    let url = format!("s3://{BUCKET}/{}", unique_prefix());
    let store = CheckpointStore::open(&url, &s3_options()).unwrap();
    store.commit(1, files(1), json!(null)).await.unwrap();
    assert_eq!(
        CheckpointStore::open(&url, &s3_options())
            .unwrap()
            .committed()
            .await
            .unwrap(),
        [1]
    );

    let store = CheckpointStore::open("memory://", &BTreeMap::new()).unwrap();
    assert!(store.latest().await.unwrap().is_none());
}

#[test]
fn bad_locations_and_options_are_named() {
    let options = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    let error = CheckpointStore::open("ftp://host/x", &BTreeMap::new()).unwrap_err();
    assert!(
        error.to_string().contains("`ftp://` is not supported"),
        "{error}"
    );
    let error =
        CheckpointStore::open("s3://b/p", &options(&[("aws_endpont", "http://x")])).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`aws_endpont` is not an S3 option"),
        "{error}"
    );
    let dir = tempfile::tempdir().unwrap();
    let error = CheckpointStore::open(
        dir.path().to_str().unwrap(),
        &options(&[("aws_region", "x")]),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("applies only to s3://"),
        "{error}"
    );
}
