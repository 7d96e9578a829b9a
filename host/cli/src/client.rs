//! The client side of `sluice serve`'s admin API: `sluice plugin push`
//! and `sluice job submit|list|status|stop`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

/// Which host to call, as whom.
#[derive(Debug, clap::Args)]
pub(crate) struct Connection {
    /// The host's admin API.
    #[arg(long, env = "SLUICE_SERVER", default_value = "http://127.0.0.1:7878")]
    server: String,
    /// The tenant's API token.
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true)]
    token: String,
}

impl Connection {
    /// `method path` with `body`; the answer's JSON, or its error.
    fn call(&self, method: &str, path: &str, body: Option<&[u8]>) -> anyhow::Result<Value> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}{path}", self.server.trim_end_matches('/'));
        let bearer = format!("Bearer {}", self.token);
        let answer = match (method, body) {
            ("GET", _) => agent.get(&url).header("Authorization", &bearer).call(),
            (_, body) => agent
                .post(&url)
                .header("Authorization", &bearer)
                .send(body.unwrap_or_default()),
        };
        let mut answer = answer.with_context(|| format!("calling {url}"))?;
        let status = answer.status();
        let text = answer.body_mut().read_to_string()?;
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("{url} answered {status} with no JSON: {text}"))?;
        if !status.is_success() {
            let mut message = json["error"]
                .as_str()
                .unwrap_or("no reason given")
                .to_owned();
            if let Some(field) = json["field"].as_str() {
                message = format!("{field}: {message}");
            }
            if let Some(line) = json["line"].as_u64() {
                message = format!("line {line}, {message}");
            }
            bail!("the host refused ({status}): {message}");
        }
        Ok(json)
    }

    /// Upload the component at `file`; returns its digest.
    pub(crate) fn push_plugin(&self, file: &Path) -> anyhow::Result<String> {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let answer = self.call("POST", "/v1/plugins", Some(&bytes))?;
        answer["digest"]
            .as_str()
            .map(str::to_owned)
            .context("the host answered no digest")
    }

    /// Submit the job file at `file`: its plugins given by path are
    /// uploaded first and named by digest. Returns the job as the host
    /// shows it.
    pub(crate) fn submit(&self, file: &Path) -> anyhow::Result<Value> {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let mut job: toml::Table =
            toml::from_str(&text).with_context(|| format!("{} is not TOML", file.display()))?;
        let base = file.parent().unwrap_or(Path::new("."));
        let mut plugins: Vec<&mut toml::Value> = Vec::new();
        for (section, value) in job.iter_mut() {
            match (section.as_str(), value) {
                ("transform", toml::Value::Array(transforms)) => {
                    plugins.extend(transforms.iter_mut().filter_map(|t| t.get_mut("plugin")));
                }
                ("aggregate", aggregate) => plugins.extend(aggregate.get_mut("plugin")),
                _ => {}
            }
        }
        for plugin in plugins {
            if let Some(path) = plugin.as_str().filter(|p| !p.starts_with("sha256:")) {
                let digest = self.push_plugin(&base.join(PathBuf::from(path)))?;
                *plugin = toml::Value::String(digest);
            }
        }
        let text = toml::to_string(&job)?;
        self.call("POST", "/v1/jobs", Some(text.as_bytes()))
    }

    /// The tenant's jobs.
    pub(crate) fn list(&self) -> anyhow::Result<Value> {
        self.call("GET", "/v1/jobs", None)
    }

    /// Job `id`.
    pub(crate) fn status(&self, id: &str) -> anyhow::Result<Value> {
        self.call("GET", &format!("/v1/jobs/{id}"), None)
    }

    /// Swap transform `transform` of job `id` for `plugin` (a file, which
    /// is uploaded, or a digest), with `config` if any is given.
    pub(crate) fn swap(
        &self,
        id: &str,
        transform: &str,
        plugin: &str,
        config: &[(String, String)],
    ) -> anyhow::Result<Value> {
        let digest = if plugin.starts_with("sha256:") {
            plugin.to_owned()
        } else {
            self.push_plugin(Path::new(plugin))?
        };
        let mut body = serde_json::json!({ "transform": transform, "plugin": digest });
        if !config.is_empty() {
            body["config"] = config
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        self.call(
            "POST",
            &format!("/v1/jobs/{id}/swap"),
            Some(body.to_string().as_bytes()),
        )
    }

    /// Stop job `id`.
    pub(crate) fn stop(&self, id: &str) -> anyhow::Result<Value> {
        self.call("POST", &format!("/v1/jobs/{id}/stop"), None)
    }
}
