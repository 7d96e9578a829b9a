//! What the host's tests share: a host file with two tenants, a client of
//! its API, and a job through pii-redact.
#![allow(dead_code)] // each test binary uses its own part of it

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_plugin_artifacts as artifacts;
use sluice_runtime::{Runtime, RuntimeConfig};
use sluice_server::{HostConfig, Server, new_token};

/// A tenant's token, as its requests bear it.
pub(crate) struct Token(pub(crate) String);

/// A host with tenants `a` (topics `a.`) and `b` (topics `b.`), two jobs
/// each at most, and plugin instances of at most 128 MiB.
pub(crate) fn host_file(state: &Path) -> (HostConfig, Token, Token) {
    let (token_a, hash_a) = new_token().unwrap();
    let (token_b, hash_b) = new_token().unwrap();
    let text = format!(
        r#"
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
state = "{state}"
[[tenant]]
name = "a"
token_sha256 = ["{hash_a}"]
topics = ["a."]
max_jobs = 2
memory_limit = "128 MiB"
[[tenant]]
name = "b"
token_sha256 = ["{hash_b}"]
topics = ["b."]
"#,
        state = state.display()
    );
    let config = HostConfig::parse(&state.join("host.toml"), &text).unwrap();
    (config, Token(token_a), Token(token_b))
}

pub(crate) fn start(config: &HostConfig) -> Server {
    Server::start(config, Runtime::new(RuntimeConfig::default()).unwrap()).unwrap()
}

/// Calls the API of one server.
pub(crate) struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    pub(crate) fn new(server: &Server) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            base: format!("http://{}", server.address()),
            agent,
        }
    }

    /// (status, JSON body) of `method path` with `body`, as `token`.
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&Token>,
        body: &[u8],
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let bearer = token.map(|t| format!("Bearer {}", t.0));
        let mut response = match method {
            "GET" => {
                let mut request = self.agent.get(&url);
                if let Some(bearer) = &bearer {
                    request = request.header("Authorization", bearer);
                }
                request.call()
            }
            "POST" => {
                let mut request = self.agent.post(&url);
                if let Some(bearer) = &bearer {
                    request = request.header("Authorization", bearer);
                }
                request.send(body)
            }
            "PUT" => {
                let mut request = self.agent.put(&url);
                if let Some(bearer) = &bearer {
                    request = request.header("Authorization", bearer);
                }
                request.send(body)
            }
            "DELETE" => {
                let mut request = self.agent.delete(&url);
                if let Some(bearer) = &bearer {
                    request = request.header("Authorization", bearer);
                }
                request.call()
            }
            other => panic!("no method {other}"),
        }
        .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    pub(crate) fn get(&self, path: &str, token: Option<&Token>) -> (u16, Value) {
        self.call("GET", path, token, b"")
    }

    pub(crate) fn post(&self, path: &str, token: Option<&Token>, body: &[u8]) -> (u16, Value) {
        self.call("POST", path, token, body)
    }

    /// Upload the plugin at `path` as `token`'s tenant; returns its digest.
    pub(crate) fn push(&self, token: &Token, path: &str) -> String {
        let bytes = std::fs::read(path).unwrap();
        let (status, body) = self.post("/v1/plugins", Some(token), &bytes);
        assert_eq!(status, 201, "{body}");
        body["digest"].as_str().unwrap().to_owned()
    }

    /// Upload pii-redact as `token`'s tenant; returns its digest.
    pub(crate) fn push_redact(&self, token: &Token) -> String {
        self.push(token, artifacts::PII_REDACT)
    }

    /// Submit `job` as `token`'s tenant, which must be accepted; its id.
    pub(crate) fn submit(&self, token: &Token, job: &str) -> String {
        let (status, body) = self.post("/v1/jobs", Some(token), job.as_bytes());
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Wait until job `id` has committed a checkpoint past `epoch`.
    pub(crate) fn checkpoint_after(&self, token: &Token, id: &str, epoch: Option<u64>) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, job) = self.get(&format!("/v1/jobs/{id}"), Some(token));
            assert_eq!(status, 200, "{job}");
            assert_ne!(job["state"], "failed", "{job}");
            if let Some(last) = job["last_checkpoint"].as_u64()
                && epoch.is_none_or(|e| last > e)
            {
                return last;
            }
            assert!(Instant::now() < deadline, "no checkpoint came: {job}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A job of generated emails through pii-redact (`digest`) to the
/// console, checkpointing often.
pub(crate) fn redact_job(name: &str, digest: &str, extra: &str) -> String {
    format!(
        r#"
[job]
name = "{name}"
parallelism = 1
[source]
type = "datagen"
rows_per_second = 2000
columns = [{{ name = "email", generator = "email" }}]
[trigger]
max_interval = "50ms"
[[transform]]
plugin = "{digest}"
config = {{ columns = "email" }}
memory_limit = "64 MiB"
[sink]
type = "console"
num_rows = 0
[checkpoint]
location = "chosen by the host"
interval = "100ms"
{extra}
"#
    )
}
