//! Tenants through the API: the host's operators make a tenant, give it
//! tokens and revoke them; the tenant runs jobs under the quotas it was
//! given; tenants' tokens cannot manage tenants; the host file's tenants
//! are changed only there; and a made tenant outlives a restart.

mod common;

use common::{Client, Token, host_file, redact_job, start};
use serde_json::{Value, json};
use sluice_server::new_token;

/// `PUT /v1/tenants/NAME` with `spec`, as `token`.
fn put_tenant(client: &Client, token: &Token, name: &str, spec: &Value) -> (u16, Value) {
    client.call(
        "PUT",
        &format!("/v1/tenants/{name}"),
        Some(token),
        spec.to_string().as_bytes(),
    )
}

#[test]
fn operators_make_tenants_that_run_jobs_under_their_quotas_and_outlive_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let (mut config, a, _b) = host_file(state.path());
    let (operator, hash) = new_token().unwrap();
    config.admin_token_sha256 = vec![hash];
    let operator = Token(operator);
    let server = start(&config);
    let client = Client::new(&server);

    // Only an operator manages tenants.
    let spec = json!({ "topics": ["c."], "max_jobs": 1, "memory_limit": "96 MiB" });
    let (status, _) = put_tenant(&client, &a, "c", &spec);
    assert_eq!(status, 401);
    let (status, _) = client.get("/v1/tenants", None);
    assert_eq!(status, 401);

    // Made with the host file's defaults where the spec is silent.
    let (status, made) = put_tenant(&client, &operator, "c", &spec);
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["memory_limit_bytes"], 96 << 20, "{made}");
    assert_eq!(made["deadline_ms"], 5000, "{made}");
    assert_eq!(made["defined_in"], "api", "{made}");
    let (status, token) = client.post("/v1/tenants/c/tokens", Some(&operator), b"");
    assert_eq!(status, 201, "{token}");
    let c = Token(token["token"].as_str().unwrap().to_owned());

    // The new tenant runs a job, and no more than its max_jobs.
    let (_, own) = client.get("/v1/tenant", Some(&c));
    assert_eq!(own["name"], "c", "{own}");
    assert_eq!(own["topics"], json!(["c."]), "{own}");
    let digest = client.push_redact(&c);
    let id = client.submit(&c, &redact_job("made", &digest, ""));
    client.checkpoint_after(&c, &id, None);
    let (status, refused) = client.post(
        "/v1/jobs",
        Some(&c),
        redact_job("second", &digest, "").as_bytes(),
    );
    assert_eq!(status, 429, "{refused}");
    // It does not see the host file's tenants' jobs, nor they its own.
    let (status, _) = client.get(&format!("/v1/jobs/{id}"), Some(&a));
    assert_eq!(status, 404);

    // Wrong specs name their field; the host file's tenants stay its own.
    let (status, refused) = put_tenant(
        &client,
        &operator,
        "d",
        &json!({ "topics": [], "deadline": "soon" }),
    );
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["field"], "deadline", "{refused}");
    let (status, refused) = put_tenant(&client, &operator, "D!", &json!({ "topics": [] }));
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["field"], "name", "{refused}");
    let (status, refused) = put_tenant(&client, &operator, "a", &json!({ "topics": ["x."] }));
    assert_eq!(status, 409, "{refused}");
    let (_, listed) = client.get("/v1/tenants", Some(&operator));
    let names: Vec<&str> = listed["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"], "{listed}");

    // A restarted host serves the tenant, its token and its job.
    server.shut_down().unwrap();
    let server = start(&config);
    let client = Client::new(&server);
    let (status, job) = client.get(&format!("/v1/jobs/{id}"), Some(&c));
    assert_eq!(status, 200, "{job}");
    client.checkpoint_after(&c, &id, job["last_checkpoint"].as_u64());

    // Changed quotas apply to what it does next; revoked tokens no more.
    let (status, changed) = put_tenant(
        &client,
        &operator,
        "c",
        &json!({ "topics": ["c."], "max_jobs": 2 }),
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["tokens"], 1, "{changed}");
    client.submit(&c, &redact_job("second", &digest, ""));
    let (status, _) = client.call("DELETE", "/v1/tenants/c/tokens", Some(&operator), b"");
    assert_eq!(status, 204);
    let (status, _) = client.get("/v1/tenant", Some(&c));
    assert_eq!(status, 401);
    let (_, listed) = client.get("/v1/tenants", Some(&operator));
    assert_eq!(listed["tenants"][2]["tokens"], 0, "{listed}");
    server.shut_down().unwrap();
}
