//! The admin API of `sluice serve`, in process: authentication, one
//! tenant never reaching another's jobs or plugins, what a job may ask
//! for, and a host restart resuming its jobs from their checkpoints.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Token, host_file, redact_job, start};
use serde_json::Value;
use sluice_plugin_artifacts as artifacts;

#[test]
fn every_request_needs_a_tenants_token() {
    let state = tempfile::tempdir().unwrap();
    let (config, _, _) = host_file(state.path());
    let server = start(&config);
    let client = Client::new(&server);
    for path in ["/v1/jobs", "/v1/plugins", "/v1/jobs/0123456789ab"] {
        let (status, body) = client.get(path, None);
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
        let (status, _) = client.get(path, Some(&Token("sluice_not-a-token".into())));
        assert_eq!(status, 401, "{path}");
    }
    let (status, _) = client.post("/v1/jobs", None, redact_job("x", "sha256:0", "").as_bytes());
    assert_eq!(status, 401);
    // The API's description is public, and it is the generated document.
    let (status, document) = client.get("/v1/openapi.json", None);
    assert_eq!(status, 200);
    let generated: Value = serde_json::from_str(&sluice_server::openapi()).unwrap();
    assert_eq!(document, generated);
    server.shut_down().unwrap();
}

#[test]
fn a_tenant_sees_and_touches_only_its_own_jobs_and_plugins() {
    let state = tempfile::tempdir().unwrap();
    let (config, a, b) = host_file(state.path());
    let server = start(&config);
    let client = Client::new(&server);
    let digest = client.push_redact(&a);
    assert!(digest.starts_with("sha256:"), "{digest}");

    let (status, job) = client.post(
        "/v1/jobs",
        Some(&a),
        redact_job("redact", &digest, "").as_bytes(),
    );
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    client.checkpoint_after(&a, &id, None);
    let (_, listed) = client.get("/v1/jobs", Some(&a));
    assert_eq!(listed["jobs"][0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed["jobs"][0]["name"], "redact", "{listed}");
    // Its progress: the plugin version running, what the last batch did,
    // and where the source is.
    let (_, job) = client.get(&format!("/v1/jobs/{id}"), Some(&a));
    assert_eq!(job["plugins"][0]["digest"], digest.as_str(), "{job}");
    assert!(job["last_batch"]["rows"].as_u64().unwrap() > 0, "{job}");
    assert!(job["rows_out"].as_u64().unwrap() > 0, "{job}");
    assert!(job["offsets"][0]["offset"].as_i64().unwrap() > 0, "{job}");

    // Tenant b: the job and the plugin are not there for it.
    let (_, listed) = client.get("/v1/jobs", Some(&b));
    assert_eq!(listed["jobs"], Value::Array(vec![]), "{listed}");
    let (status, _) = client.get(&format!("/v1/jobs/{id}"), Some(&b));
    assert_eq!(status, 404);
    let (status, _) = client.post(&format!("/v1/jobs/{id}/stop"), Some(&b), b"");
    assert_eq!(status, 404);
    let (_, plugins) = client.get("/v1/plugins", Some(&b));
    assert_eq!(plugins["plugins"], Value::Array(vec![]), "{plugins}");
    let (status, refused) = client.post(
        "/v1/jobs",
        Some(&b),
        redact_job("theirs", &digest, "").as_bytes(),
    );
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["field"], "transform[0].plugin", "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("was uploaded"),
        "{refused}"
    );

    // a's job still runs, and a can stop it.
    let (_, job) = client.get(&format!("/v1/jobs/{id}"), Some(&a));
    assert_eq!(job["state"], "running", "{job}");
    let (status, _) = client.post(&format!("/v1/jobs/{id}/stop"), Some(&a), b"");
    assert_eq!(status, 202);
    server.shut_down().unwrap();
}

#[test]
fn a_job_outside_the_tenants_topics_files_or_quotas_is_refused_at_submit() {
    let state = tempfile::tempdir().unwrap();
    let (config, a, _) = host_file(state.path());
    let server = start(&config);
    let client = Client::new(&server);
    let digest = client.push_redact(&a);
    let kafka = |subscribe: &str, topic: &str, extra: &str| {
        format!(
            "[source]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = \"localhost:9\", {subscribe} {extra} }}\n\
             [sink]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = \"localhost:9\", topic = \"{topic}\" }}\n"
        )
    };
    let cases = [
        (kafka("subscribe = \"b.orders\"", "a.out", ""), 403, "source.options"),
        (kafka("subscribe = \"a.orders\"", "b.out", ""), 403, "sink.options.topic"),
        (
            kafka(
                "subscribe = \"a.orders\"",
                "a.out",
                ", \"kafka.ssl.ca.location\" = \"/etc/shadow\"",
            ),
            403,
            "source.options.kafka.ssl.ca.location",
        ),
        (
            kafka("subscribePattern = \"a\\\\..*\"", "a.out", ""),
            403,
            "source.options.subscribePattern",
        ),
        (
            "[source]\ntype = \"datagen\"\ncolumns = [{ name = \"x\", generator = \"int\" }]\n[sink]\ntype = \"file\"\npath = \"/tmp/out.jsonl\"\n".to_owned(),
            403,
            "sink.type",
        ),
        (
            redact_job("big", &digest, "").replace("\"64 MiB\"", "\"512 MiB\""),
            403,
            "transform[0].memory_limit",
        ),
        (
            redact_job("restless", &digest, "restart_backoff = \"0s\""),
            403,
            "checkpoint.restart_backoff",
        ),
        ("[source]\ntype = \"datagen\"\n".to_owned(), 400, ""),
    ];
    for (job, expected, field) in cases {
        let (status, refused) = client.post("/v1/jobs", Some(&a), job.as_bytes());
        assert_eq!(status, expected, "{job}: {refused}");
        assert!(refused["error"].is_string(), "{refused}");
        if !field.is_empty() {
            assert_eq!(refused["field"], field, "{refused}");
        }
    }
    let (_, listed) = client.get("/v1/jobs", Some(&a));
    assert_eq!(
        listed["jobs"],
        Value::Array(vec![]),
        "a refused job is not kept: {listed}"
    );

    // max_jobs = 2: a third running job is over the quota.
    for name in ["one", "two"] {
        client.submit(&a, &redact_job(name, &digest, ""));
    }
    let (status, refused) = client.post(
        "/v1/jobs",
        Some(&a),
        redact_job("three", &digest, "").as_bytes(),
    );
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["field"], "max_jobs", "{refused}");
    server.shut_down().unwrap();
}

#[test]
fn a_restarted_host_resumes_its_jobs_from_their_checkpoints_and_leaves_stopped_ones_stopped() {
    let state = tempfile::tempdir().unwrap();
    let (config, a, _) = host_file(state.path());
    let server = start(&config);
    let client = Client::new(&server);
    let digest = client.push_redact(&a);
    let submit = |name: &str| client.submit(&a, &redact_job(name, &digest, ""));
    let (kept, stopped) = (submit("kept"), submit("stopped"));
    let before = client.checkpoint_after(&a, &kept, None);
    client.checkpoint_after(&a, &stopped, None);
    let (status, _) = client.post(&format!("/v1/jobs/{stopped}/stop"), Some(&a), b"");
    assert_eq!(status, 202);
    server.shut_down().unwrap();

    let server = start(&config);
    let client = Client::new(&server);
    let (_, job) = client.get(&format!("/v1/jobs/{kept}"), Some(&a));
    assert_eq!(job["name"], "kept", "{job}");
    let restored = job["last_checkpoint"].as_u64();
    assert!(
        restored.is_some_and(|epoch| epoch >= before),
        "the job did not go on from its checkpoint (epoch {before} or later): {job}"
    );
    client.checkpoint_after(&a, &kept, restored);
    let (_, job) = client.get(&format!("/v1/jobs/{stopped}"), Some(&a));
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(job["batches"], 0, "a stopped job does not run again: {job}");
    server.shut_down().unwrap();
}

/// Wait until job `id` has failed; its error.
fn failure_of(client: &Client, token: &Token, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, job) = client.get(&format!("/v1/jobs/{id}"), Some(token));
        if job["state"] == "failed" {
            return job["error"].as_str().unwrap_or_default().to_owned();
        }
        assert!(Instant::now() < deadline, "the job did not fail: {job}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_spinning_or_hoarding_neighbour_is_stopped_at_its_limits_and_the_other_jobs_run_on() {
    let state = tempfile::tempdir().unwrap();
    let (config, a, b) = host_file(state.path());
    let server = start(&config);
    let client = Client::new(&server);
    let redact = client.push_redact(&a);
    let steady = client.submit(&a, &redact_job("steady", &redact, ""));
    client.checkpoint_after(&a, &steady, None);

    // Tenant b's plugins: one loops forever, one allocates without end.
    let push = |plugin: &str| client.push(&b, plugin);
    let noisy = |name: &str, plugin: &str, limits: &str| {
        let job = format!(
            "[job]\nname = \"{name}\"\nparallelism = 1\n[source]\ntype = \"datagen\"\ncolumns = [{{ name = \"x\", generator = \"int\" }}]\n\
             [[transform]]\nplugin = \"{plugin}\"\n{limits}\n[sink]\ntype = \"console\"\nnum_rows = 0\n\
             [checkpoint]\nlocation = \"host\"\nrestart_attempts = 0\n"
        );
        client.submit(&b, &job)
    };
    let spin = noisy(
        "spin",
        &push(artifacts::SPIN_FOREVER),
        "deadline = \"100ms\"",
    );
    let hog = noisy(
        "hog",
        &push(artifacts::ALLOC_FOREVER),
        "memory_limit = \"32 MiB\"",
    );
    let spun = failure_of(&client, &b, &spin);
    assert!(spun.contains("deadline of 100 ms"), "{spun}");
    let hoarded = failure_of(&client, &b, &hog);
    assert!(hoarded.contains("memory"), "{hoarded}");

    // Tenant a's job never stopped, and goes on.
    let (_, before) = client.get(&format!("/v1/jobs/{steady}"), Some(&a));
    let last = client.checkpoint_after(&a, &steady, before["last_checkpoint"].as_u64());
    let (_, after) = client.get(&format!("/v1/jobs/{steady}"), Some(&a));
    assert_eq!(after["state"], "running", "{after}");
    assert!(
        after["batches"].as_u64() > before["batches"].as_u64(),
        "{before} then {after} (checkpoint {last})"
    );
    server.shut_down().unwrap();
}

#[test]
fn a_swapped_plugin_runs_at_once_a_failing_one_is_rolled_back_and_a_restart_keeps_the_swap() {
    let state = tempfile::tempdir().unwrap();
    let (config, a, b) = host_file(state.path());
    let server = start(&config);
    let client = Client::new(&server);
    let redact = client.push_redact(&a);
    let filter = client.push(&a, artifacts::FILTER);
    let id = client.submit(&a, &redact_job("swapped", &redact, ""));
    let (_, job) = client.get(&format!("/v1/jobs/{id}"), Some(&a));
    assert_eq!(job["plugins"][0]["name"], "transform-0", "{job}");
    let epoch = client.checkpoint_after(&a, &id, None);
    let swap = |token: &Token, body: serde_json::Value| {
        client.post(
            &format!("/v1/jobs/{id}/swap"),
            Some(token),
            body.to_string().as_bytes(),
        )
    };

    // Another tenant cannot swap it.
    let keep_all = serde_json::json!({ "column": "email", "op": "is_not_null" });
    let body =
        serde_json::json!({ "transform": "transform-0", "plugin": filter, "config": keep_all });
    assert_eq!(swap(&b, body.clone()).0, 404);
    let (status, swapped) = swap(&a, body);
    assert_eq!(status, 200, "{swapped}");
    assert_eq!(
        swapped["plugins"][0]["digest"],
        filter.as_str(),
        "{swapped}"
    );
    assert_eq!(swapped["swaps"][0]["from"], redact.as_str(), "{swapped}");
    let epoch = client.checkpoint_after(&a, &id, Some(epoch));

    // A version that fails its first batch (the filter without its
    // config) is rolled back; the job goes on with the one before.
    let (status, refused) = swap(
        &a,
        serde_json::json!({ "transform": "transform-0", "plugin": filter, "config": {} }),
    );
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("failed its first batch"),
        "{refused}"
    );
    let (_, job) = client.get(&format!("/v1/jobs/{id}"), Some(&a));
    assert!(job["swaps"][1]["rolled_back"].is_string(), "{job}");
    assert_eq!(job["plugins"][0]["digest"], filter.as_str(), "{job}");
    client.checkpoint_after(&a, &id, Some(epoch));
    // The host's metrics count both swaps by outcome, under the job and
    // its tenant; the tenants' API does not serve them.
    let scrape = ureq::get(&format!(
        "http://{}/metrics",
        server.metrics_address().unwrap()
    ))
    .call()
    .unwrap()
    .body_mut()
    .read_to_string()
    .unwrap();
    for outcome in ["swapped", "rolled_back"] {
        let line = format!(
            "sluice_plugin_swaps_total{{job=\"{id}\",tenant=\"a\",plugin=\"transform-0\",outcome=\"{outcome}\"}} 1\n"
        );
        assert!(scrape.contains(&line), "no {line} in:\n{scrape}");
    }
    assert!(
        scrape.contains(&format!(
            "sluice_operator_rows_in_total{{job=\"{id}\",tenant=\"a\",operator=\"source\"}}"
        )),
        "{scrape}"
    );
    assert_eq!(client.get("/metrics", Some(&a)).0, 404);
    // Refused outright: no such transform, or a plugin not uploaded.
    let (status, refused) = swap(
        &a,
        serde_json::json!({ "transform": "transform-9", "plugin": filter }),
    );
    assert_eq!(
        (status, refused["field"].as_str()),
        (400, Some("transform")),
        "{refused}"
    );

    // The host restarts: the job runs the version swapped in, not the
    // one rolled back, and goes on from its checkpoint.
    server.shut_down().unwrap();
    let server = start(&config);
    let client = Client::new(&server);
    let (_, job) = client.get(&format!("/v1/jobs/{id}"), Some(&a));
    assert_eq!(job["plugins"][0]["digest"], filter.as_str(), "{job}");
    let resumed = job["last_checkpoint"].as_u64();
    client.checkpoint_after(&a, &id, resumed);
    let (_, job) = client.get(&format!("/v1/jobs/{id}"), Some(&a));
    assert_eq!(job["state"], "running", "{job}");
    server.shut_down().unwrap();
}

#[test]
fn submits_at_the_same_time_do_not_pass_max_jobs_together() {
    let state = tempfile::tempdir().unwrap();
    let (config, a, _) = host_file(state.path());
    let server = start(&config);
    let client = Client::new(&server);
    let digest = client.push_redact(&a);
    // Tenant a's max_jobs is 2; six submits race for the places while
    // each job takes a while to start.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let submits: Vec<_> = (0..6)
            .map(|i| {
                let (client, a, digest) = (&client, &a, &digest);
                scope.spawn(move || {
                    let job = redact_job(&format!("racer-{i}"), digest, "");
                    client.post("/v1/jobs", Some(a), job.as_bytes()).0
                })
            })
            .collect();
        submits.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let accepted = statuses.iter().filter(|&&s| s == 201).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((accepted, refused), (2, 4), "statuses {statuses:?}");
    let (_, listed) = client.get("/v1/jobs", Some(&a));
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 2, "{listed}");
    server.shut_down().unwrap();
}
