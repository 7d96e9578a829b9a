//! Tenants and their API tokens: a request names its tenant by the token
//! it bears, which the host knows only by its SHA-256, compared in
//! constant time. Tenants come from the host file, or are made by the
//! host's operators through the API and kept as
//! `STATE/tenants/T/tenant.json`, so they outlive a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{HostConfig, TenantConfig, is_tenant_name};

/// A tenant the host serves.
#[derive(Debug)]
pub(crate) struct Tenant {
    /// What the tenant may do.
    pub(crate) config: TenantConfig,
    /// Whether the host file defines it (else the API made it).
    pub(crate) in_host_file: bool,
    /// The SHA-256 of each token it may present.
    hashes: Vec<[u8; 32]>,
}

impl Tenant {
    /// The tenant `config` describes.
    fn new(config: TenantConfig, in_host_file: bool) -> Self {
        let hashes = config
            .token_sha256
            .iter()
            .filter_map(|hash| hex::decode(hash).ok()?.try_into().ok())
            .collect();
        Tenant {
            config,
            in_host_file,
            hashes,
        }
    }

    /// The tenant's name.
    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether the tenant's allow-list holds `topic`.
    pub(crate) fn may_use_topic(&self, topic: &str) -> bool {
        self.config
            .topics
            .iter()
            .any(|prefix| topic.starts_with(prefix.as_str()))
    }
}

/// A tenant as the API makes it: the host file's `[[tenant]]` fields but
/// its name and tokens, with the same defaults.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantSpec {
    /// Prefixes of the Kafka topics its jobs may read and write.
    pub(crate) topics: Vec<String>,
    /// Jobs running at once (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_jobs: Option<usize>,
    /// The largest memory of a plugin instance, e.g. `"256 MiB"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) memory_limit: Option<String>,
    /// The longest deadline of a plugin call, e.g. `"5s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deadline: Option<String>,
    /// The largest window state of a job, e.g. `"1 GiB"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_state_bytes: Option<String>,
    /// The most source records per second each of its jobs reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_records_per_second: Option<u64>,
    /// The shortest restart backoff its jobs may set, e.g. `"1s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) min_restart_backoff: Option<String>,
}

impl TenantSpec {
    /// The tenant `name` with these settings and `token_sha256`, with
    /// the host file's defaults; the error names the field at fault.
    fn config(&self, name: &str, token_sha256: &[String]) -> Result<TenantConfig, TenantError> {
        let size = |field: &str, given: &Option<String>, default: ByteSize| match given {
            None => Ok(default),
            Some(text) => text.parse::<ByteSize>().map_err(|e| {
                TenantError::Invalid(
                    field.into(),
                    format!("{text:?} is not a size like \"256 MiB\": {e}"),
                )
            }),
        };
        let duration = |field: &str, given: &Option<String>, default: Duration| match given {
            None => Ok(default),
            Some(text) => humantime::parse_duration(text).map_err(|e| {
                TenantError::Invalid(
                    field.into(),
                    format!("{text:?} is not a duration like \"5s\": {e}"),
                )
            }),
        };
        Ok(TenantConfig {
            name: name.to_owned(),
            token_sha256: token_sha256.to_vec(),
            topics: self.topics.clone(),
            max_jobs: self.max_jobs.unwrap_or_else(TenantConfig::default_max_jobs),
            memory_limit: size(
                "memory_limit",
                &self.memory_limit,
                TenantConfig::default_memory_limit(),
            )?,
            deadline: duration("deadline", &self.deadline, TenantConfig::default_deadline())?,
            max_state_bytes: size(
                "max_state_bytes",
                &self.max_state_bytes,
                TenantConfig::default_max_state_bytes(),
            )?,
            max_records_per_second: self.max_records_per_second,
            min_restart_backoff: duration(
                "min_restart_backoff",
                &self.min_restart_backoff,
                TenantConfig::default_min_restart_backoff(),
            )?,
        })
    }
}

/// A tenant the API made, as the host keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct StoredTenant {
    spec: TenantSpec,
    token_sha256: Vec<String>,
}

/// Why a request about tenants failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TenantError {
    /// A field of the request is wrong: the field, and why.
    #[error("{0}: {1}")]
    Invalid(String, String),
    /// The host file defines the tenant; the API does not change it.
    #[error("tenant {0:?} is defined in the host file; change it there")]
    InHostFile(String),
    /// No such tenant.
    #[error("no tenant {0:?}")]
    NotFound(String),
    /// The host's storage failed.
    #[error("the host's storage: {0}")]
    Storage(#[from] std::io::Error),
}

/// Every tenant of the host, and its operators' tokens.
#[derive(Debug)]
pub(crate) struct Tenants {
    /// Tenants by name: the host file's, then the API's.
    tenants: RwLock<BTreeMap<String, Arc<Tenant>>>,
    /// The SHA-256 of each operator token.
    operators: Vec<[u8; 32]>,
    /// Where the API's tenants are kept: `STATE/tenants`.
    dir: PathBuf,
}

impl Tenants {
    /// The tenants of the host file (whose hashes it has checked) and
    /// those the API made, kept under its state directory. A kept tenant
    /// the host file now defines is the host file's.
    pub(crate) fn load(config: &HostConfig) -> std::io::Result<Self> {
        let dir = config.state.join("tenants");
        let mut tenants: BTreeMap<String, Arc<Tenant>> = config
            .tenants
            .iter()
            .map(|c| (c.name.clone(), Arc::new(Tenant::new(c.clone(), true))))
            .collect();
        for (name, kept) in kept_tenants(&dir)? {
            if tenants.contains_key(&name) {
                tracing::warn!(tenant = %name, "the host file defines this tenant; its API settings are ignored");
                continue;
            }
            match kept.spec.config(&name, &kept.token_sha256) {
                Ok(config) => {
                    tenants.insert(name, Arc::new(Tenant::new(config, false)));
                }
                Err(error) => tracing::warn!(tenant = %name, "not served: {error}"),
            }
        }
        let operators = config
            .admin_token_sha256
            .iter()
            .filter_map(|hash| hex::decode(hash).ok()?.try_into().ok())
            .collect();
        Ok(Tenants {
            tenants: RwLock::new(tenants),
            operators,
            dir,
        })
    }

    /// The tenant whose token an `Authorization: Bearer TOKEN` header
    /// bears, if any. Every known hash is compared, in constant time, so
    /// the time taken says nothing of which one matched or how closely.
    pub(crate) fn authenticate(&self, authorization: Option<&str>) -> Option<Arc<Tenant>> {
        let presented = presented(authorization)?;
        let mut found = None;
        for tenant in self.read().values() {
            for hash in &tenant.hashes {
                if bool::from(hash.ct_eq(&presented)) {
                    found = Some(Arc::clone(tenant));
                }
            }
        }
        found
    }

    /// Whether the header bears an operator's token (compared as
    /// [`Tenants::authenticate`] does).
    pub(crate) fn is_operator(&self, authorization: Option<&str>) -> bool {
        let Some(presented) = presented(authorization) else {
            return false;
        };
        self.operators.iter().fold(false, |found, hash| {
            found | bool::from(hash.ct_eq(&presented))
        })
    }

    /// Every tenant, by name.
    pub(crate) fn all(&self) -> Vec<Arc<Tenant>> {
        self.read().values().cloned().collect()
    }

    /// Make tenant `name` with `spec`, or change it (its tokens stay);
    /// kept so that a restarted host serves it. Whether it is new.
    pub(crate) fn put(
        &self,
        name: &str,
        spec: &TenantSpec,
    ) -> Result<(Arc<Tenant>, bool), TenantError> {
        if !is_tenant_name(name) {
            return Err(TenantError::Invalid(
                "name".into(),
                format!("{name:?}: use lowercase letters, digits, `-` and `_` (at most 64)"),
            ));
        }
        let mut tenants = self.write();
        let existing = tenants.get(name);
        if existing.is_some_and(|t| t.in_host_file) {
            return Err(TenantError::InHostFile(name.to_owned()));
        }
        let hashes = existing.map_or_else(Vec::new, |t| t.config.token_sha256.clone());
        let config = spec.config(name, &hashes)?;
        self.keep(name, spec, &hashes)?;
        let tenant = Arc::new(Tenant::new(config, false));
        let new = tenants
            .insert(name.to_owned(), Arc::clone(&tenant))
            .is_none();
        Ok((tenant, new))
    }

    /// A new token for the API's tenant `name`, which from now on names
    /// it; the host keeps only its SHA-256.
    pub(crate) fn new_token(&self, name: &str) -> Result<String, TenantError> {
        let (token, hash) = new_token()?;
        self.change_tokens(name, |hashes| hashes.push(hash))?;
        Ok(token)
    }

    /// Revoke every token of the API's tenant `name`.
    pub(crate) fn revoke_tokens(&self, name: &str) -> Result<(), TenantError> {
        self.change_tokens(name, Vec::clear)
    }

    /// Change the token hashes of the API's tenant `name` with `change`,
    /// and keep them.
    fn change_tokens(
        &self,
        name: &str,
        change: impl FnOnce(&mut Vec<String>),
    ) -> Result<(), TenantError> {
        let mut tenants = self.write();
        let tenant = tenants
            .get(name)
            .ok_or_else(|| TenantError::NotFound(name.to_owned()))?;
        if tenant.in_host_file {
            return Err(TenantError::InHostFile(name.to_owned()));
        }
        let mut config = tenant.config.clone();
        change(&mut config.token_sha256);
        let spec = self.kept_spec(name)?;
        self.keep(name, &spec, &config.token_sha256)?;
        tenants.insert(name.to_owned(), Arc::new(Tenant::new(config, false)));
        Ok(())
    }

    /// The spec the API gave tenant `name`, as kept.
    fn kept_spec(&self, name: &str) -> Result<TenantSpec, TenantError> {
        let text = std::fs::read(self.dir.join(name).join(TENANT_FILE))?;
        let kept: StoredTenant = serde_json::from_slice(&text).map_err(std::io::Error::other)?;
        Ok(kept.spec)
    }

    /// Keep tenant `name`'s `spec` and token hashes.
    fn keep(&self, name: &str, spec: &TenantSpec, hashes: &[String]) -> std::io::Result<()> {
        let kept = StoredTenant {
            spec: spec.clone(),
            token_sha256: hashes.to_vec(),
        };
        let text = serde_json::to_vec_pretty(&kept).map_err(std::io::Error::other)?;
        crate::jobs::write_atomically(&self.dir.join(name).join(TENANT_FILE), &text)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Tenant>>> {
        self.tenants.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Tenant>>> {
        self.tenants.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The file, in a tenant's directory, that keeps a tenant the API made.
const TENANT_FILE: &str = "tenant.json";

/// The tenants the API made, as kept under `dir`, by name.
fn kept_tenants(dir: &Path) -> std::io::Result<Vec<(String, StoredTenant)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut kept = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file = entry.path().join(TENANT_FILE);
        let text = match std::fs::read(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        match serde_json::from_slice(&text) {
            Ok(tenant) => kept.push((name, tenant)),
            Err(error) => tracing::warn!(file = %file.display(), "not a kept tenant: {error}"),
        }
    }
    Ok(kept)
}

/// The SHA-256 of the bearer token in an `Authorization` header.
fn presented(authorization: Option<&str>) -> Option<[u8; 32]> {
    let token = authorization?.strip_prefix("Bearer ")?.trim();
    Some(Sha256::digest(token.as_bytes()).into())
}

/// A new random API token and the SHA-256 (hex) to put in the host file.
pub fn new_token() -> std::io::Result<(String, String)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    let token = format!("sluice_{}", hex::encode(bytes));
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    Ok((token, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str, token: &str) -> TenantConfig {
        TenantConfig {
            name: name.into(),
            token_sha256: vec![hex::encode(Sha256::digest(token.as_bytes()))],
            topics: vec![format!("{name}.")],
            max_jobs: 1,
            memory_limit: bytesize::ByteSize::mib(64),
            deadline: Duration::from_secs(1),
            max_state_bytes: bytesize::ByteSize::mib(64),
            max_records_per_second: None,
            min_restart_backoff: Duration::from_secs(1),
        }
    }

    /// A host's tenants: those of `configs` (with a state directory
    /// that does not exist, so none made through the API).
    fn hosting(configs: &[TenantConfig]) -> Tenants {
        let config = HostConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: None,
            state: PathBuf::from("/nonexistent/sluice-state"),
            plugin_store: None,
            plugin_store_options: BTreeMap::new(),
            tenants: configs.to_vec(),
            admin_token_sha256: Vec::new(),
            max_concurrent_calls: None,
        };
        Tenants::load(&config).unwrap()
    }

    #[test]
    fn a_token_names_its_tenant_and_nothing_else_does() {
        let tenants = hosting(&[tenant("a", "token-a"), tenant("b", "token-b")]);
        let who = |header: Option<&str>| tenants.authenticate(header).map(|t| t.name().to_owned());
        assert_eq!(who(Some("Bearer token-a")).as_deref(), Some("a"));
        assert_eq!(who(Some("Bearer token-b")).as_deref(), Some("b"));
        assert_eq!(who(Some("Bearer token-c")), None);
        assert_eq!(who(Some("token-a")), None, "not a bearer token");
        assert_eq!(who(None), None);
    }

    #[test]
    fn a_new_token_matches_its_hash() {
        let (token, hash) = new_token().unwrap();
        let mut config = tenant("a", "unused");
        config.token_sha256 = vec![hash];
        let tenants = hosting(&[config]);
        assert!(
            tenants
                .authenticate(Some(&format!("Bearer {token}")))
                .is_some()
        );
        assert_ne!(new_token().unwrap().0, token);
    }

    #[test]
    fn topics_are_allowed_by_prefix() {
        let tenants = hosting(&[tenant("a", "t")]);
        let a = tenants.all().remove(0);
        assert!(a.may_use_topic("a.orders"));
        assert!(!a.may_use_topic("b.orders"));
        assert!(!a.may_use_topic("a"));
    }
}
