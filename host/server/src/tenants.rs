//! Tenants and their API tokens: a request names its tenant by the token
//! it bears, which the host knows only by its SHA-256, compared in
//! constant time.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::TenantConfig;

/// A tenant the host serves.
#[derive(Debug)]
pub(crate) struct Tenant {
    /// What the tenant may do.
    pub(crate) config: TenantConfig,
    /// The SHA-256 of each token it may present.
    hashes: Vec<[u8; 32]>,
}

impl Tenant {
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

/// Every tenant of the host.
#[derive(Debug)]
pub(crate) struct Tenants(Vec<Arc<Tenant>>);

impl Tenants {
    /// The tenants of the host file (whose hashes it has checked).
    pub(crate) fn new(configs: &[TenantConfig]) -> Self {
        Tenants(
            configs
                .iter()
                .map(|config| {
                    let hashes = config
                        .token_sha256
                        .iter()
                        .filter_map(|hash| hex::decode(hash).ok()?.try_into().ok())
                        .collect();
                    Arc::new(Tenant {
                        config: config.clone(),
                        hashes,
                    })
                })
                .collect(),
        )
    }

    /// The tenant whose token an `Authorization: Bearer TOKEN` header
    /// bears, if any. Every known hash is compared, in constant time, so
    /// the time taken says nothing of which one matched or how closely.
    pub(crate) fn authenticate(&self, authorization: Option<&str>) -> Option<Arc<Tenant>> {
        let token = authorization?.strip_prefix("Bearer ")?.trim();
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for tenant in &self.0 {
            for hash in &tenant.hashes {
                if bool::from(hash.ct_eq(&presented)) {
                    found = Some(Arc::clone(tenant));
                }
            }
        }
        found
    }

    /// Each tenant.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Tenant>> {
        self.0.iter()
    }
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
            deadline: std::time::Duration::from_secs(1),
            max_state_bytes: bytesize::ByteSize::mib(64),
            max_records_per_second: None,
        }
    }

    #[test]
    fn a_token_names_its_tenant_and_nothing_else_does() {
        let tenants = Tenants::new(&[tenant("a", "token-a"), tenant("b", "token-b")]);
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
        let tenants = Tenants::new(&[config]);
        assert!(
            tenants
                .authenticate(Some(&format!("Bearer {token}")))
                .is_some()
        );
        assert_ne!(new_token().unwrap().0, token);
    }

    #[test]
    fn topics_are_allowed_by_prefix() {
        let tenants = Tenants::new(&[tenant("a", "t")]);
        let a = tenants.iter().next().unwrap();
        assert!(a.may_use_topic("a.orders"));
        assert!(!a.may_use_topic("b.orders"));
        assert!(!a.may_use_topic("a"));
    }
}
