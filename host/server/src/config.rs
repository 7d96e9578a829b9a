//! The host file (`sluice serve --config host.toml`): where the admin API
//! listens, where the host keeps its state, and its tenants.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use crate::ServerError;

/// A host: its API address, its state directory and its tenants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Where the admin API listens.
    #[serde(default = "HostConfig::default_listen")]
    pub listen: SocketAddr,
    /// Where Prometheus scrapes every job's metrics (`GET /metrics`, no
    /// token: keep it on an address only the host's operators reach);
    /// none if unset.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// The host's own directory (relative to the host file): uploaded
    /// plugins, submitted jobs and their checkpoints. A restarted host
    /// finds its jobs here and resumes them.
    pub state: PathBuf,
    /// Where uploaded plugins are kept: a directory, `file://` URL or
    /// `s3://BUCKET/PREFIX`; the state directory's `plugins/` if unset.
    /// Hosts that share it share their tenants' plugins.
    #[serde(default)]
    pub plugin_store: Option<String>,
    /// Options of an `s3://` plugin store: `aws_endpoint`, `aws_region`,
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_allow_http`, ...
    /// (else the usual `AWS_*` environment variables).
    #[serde(default)]
    pub plugin_store_options: BTreeMap<String, String>,
    /// The tenants: who may call the API, and what each may do. More
    /// can be made through the API (`PUT /v1/tenants/NAME`), which the
    /// host keeps under its state directory.
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantConfig>,
    /// The SHA-256 (hex) of each token of the host's operators, who
    /// manage tenants through the API; none, and tenants come from this
    /// file only.
    #[serde(default)]
    pub admin_token_sha256: Vec<String>,
    /// How many plugin calls, of all jobs, run at once; callers beyond
    /// wait, and the slots are shared between jobs by the CPU time their
    /// calls use. Unset: no bound, and the OS shares the cores between
    /// the jobs' threads. A bound costs throughput when jobs keep every
    /// core busy (a thread the OS sets aside holds its slot): see the
    /// `tenants` benchmark.
    #[serde(default)]
    pub max_concurrent_calls: Option<usize>,
}

/// One tenant: its API tokens, the topics it may use and its quotas.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// The tenant's name: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// The SHA-256 (hex) of each API token the tenant may present; the
    /// tokens themselves are never stored (`sluice token` makes one).
    pub token_sha256: Vec<String>,
    /// Prefixes of the Kafka topics the tenant's jobs may read and write.
    pub topics: Vec<String>,
    /// Jobs running at once.
    #[serde(default = "TenantConfig::default_max_jobs")]
    pub max_jobs: usize,
    /// The largest linear memory a plugin instance of its jobs may have.
    #[serde(default = "TenantConfig::default_memory_limit")]
    pub memory_limit: ByteSize,
    /// The longest deadline of one plugin call.
    #[serde(
        default = "TenantConfig::default_deadline",
        deserialize_with = "sluice_config::duration"
    )]
    pub deadline: Duration,
    /// The largest window state of one job's aggregate.
    #[serde(default = "TenantConfig::default_max_state_bytes")]
    pub max_state_bytes: ByteSize,
    /// The most source records per second each of its jobs reads; a job
    /// that could go faster waits. No limit when left out.
    #[serde(default)]
    pub max_records_per_second: Option<u64>,
    /// The shortest `restart_backoff` its jobs may set, so that a job
    /// failing at once on every attempt does not spend the host's cores
    /// on restarts.
    #[serde(
        default = "TenantConfig::default_min_restart_backoff",
        deserialize_with = "sluice_config::duration"
    )]
    pub min_restart_backoff: Duration,
}

impl HostConfig {
    fn default_listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 7878))
    }

    /// Read and check the host file at `path`.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServerError::Config {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// Check the host file `text`, read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ServerError> {
        let invalid = |message: String| ServerError::Config {
            path: path.to_owned(),
            message,
        };
        let mut config: HostConfig = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        config.state = dir.join(&config.state);
        if let Some(store) = &mut config.plugin_store
            && !store.contains("://")
        {
            *store = dir.join(&*store).display().to_string();
        }
        for hash in &config.admin_token_sha256 {
            if !is_sha256_hex(hash) {
                return Err(invalid(format!(
                    "admin_token_sha256 {hash:?} is not 64 hex digits"
                )));
            }
        }
        if config.max_concurrent_calls == Some(0) {
            return Err(invalid(
                "max_concurrent_calls = 0 would run no plugin call: give at least 1, or leave it out for no bound".to_owned(),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for tenant in &config.tenants {
            if !is_tenant_name(&tenant.name) {
                return Err(invalid(format!(
                    "tenant name {:?}: use lowercase letters, digits, `-` and `_`",
                    tenant.name
                )));
            }
            if !names.insert(&tenant.name) {
                return Err(invalid(format!(
                    "tenant {:?} is defined twice",
                    tenant.name
                )));
            }
            for hash in &tenant.token_sha256 {
                if !is_sha256_hex(hash) {
                    return Err(invalid(format!(
                        "tenant {:?}: token_sha256 {hash:?} is not 64 hex digits",
                        tenant.name
                    )));
                }
            }
        }
        Ok(config)
    }
}

/// Whether `name` may name a tenant: lowercase letters, digits, `-` and
/// `_` (it names a directory of the host's state).
pub(crate) fn is_tenant_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Whether `hash` is a SHA-256 in hex.
fn is_sha256_hex(hash: &str) -> bool {
    hash.len() == 64 && hex::decode(hash).is_ok()
}

impl TenantConfig {
    pub(crate) fn default_max_jobs() -> usize {
        10
    }
    pub(crate) fn default_memory_limit() -> ByteSize {
        ByteSize::mib(256)
    }
    pub(crate) fn default_deadline() -> Duration {
        Duration::from_secs(5)
    }
    pub(crate) fn default_max_state_bytes() -> ByteSize {
        ByteSize::gib(1)
    }
    pub(crate) fn default_min_restart_backoff() -> Duration {
        Duration::from_secs(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_host_file_gets_defaults_and_its_state_beside_it() {
        let text = format!(
            "state = \"state\"\n[[tenant]]\nname = \"acme\"\ntoken_sha256 = [\"{HASH}\"]\ntopics = [\"acme.\"]\n"
        );
        let config = HostConfig::parse(Path::new("/etc/sluice/host.toml"), &text).unwrap();
        assert_eq!(config.state, Path::new("/etc/sluice/state"));
        assert_eq!(config.listen, HostConfig::default_listen());
        let tenant = &config.tenants[0];
        assert_eq!(tenant.max_jobs, 10);
        assert_eq!(tenant.memory_limit, ByteSize::mib(256));
        assert_eq!(tenant.deadline, Duration::from_secs(5));
    }

    #[test]
    fn plugin_calls_are_unbounded_unless_bounded_to_at_least_one() {
        let parse = |extra: &str| {
            HostConfig::parse(Path::new("host.toml"), &format!("state = \"s\"\n{extra}"))
        };
        assert_eq!(parse("").unwrap().max_concurrent_calls, None);
        assert_eq!(
            parse("max_concurrent_calls = 4")
                .unwrap()
                .max_concurrent_calls,
            Some(4)
        );
        let error = parse("max_concurrent_calls = 0").unwrap_err().to_string();
        assert!(error.contains("max_concurrent_calls = 0"), "{error}");
    }

    #[test]
    fn bad_tenants_are_refused_by_name() {
        for (tenant, expected) in [
            (
                format!("name = \"Acme Corp\"\ntoken_sha256 = [\"{HASH}\"]"),
                "lowercase",
            ),
            (
                "name = \"acme\"\ntoken_sha256 = [\"secret\"]".to_owned(),
                "64 hex digits",
            ),
        ] {
            let text = format!("state = \"s\"\n[[tenant]]\n{tenant}\ntopics = []\n");
            let message = HostConfig::parse(Path::new("host.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(message.contains(expected), "{message}");
        }
        let twice = "state = \"s\"\n[[tenant]]\nname = \"a\"\ntoken_sha256 = []\ntopics = []\n[[tenant]]\nname = \"a\"\ntoken_sha256 = []\ntopics = []\n";
        let message = HostConfig::parse(Path::new("host.toml"), twice)
            .unwrap_err()
            .to_string();
        assert!(message.contains("defined twice"), "{message}");
    }
}
