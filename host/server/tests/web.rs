//! The live web page in headless Chromium (Debian's `chromium`, driven
//! through ChromeDriver with fantoccini): a tenant's running job shows a
//! rate above 0 without a reload, a swapped plugin's new version appears,
//! and another tenant's token never shows the job. `scripts/setup browser`
//! installs Chromium and ChromeDriver.
//!
//! With `SLUICE_BLESS=1`, the job page's screenshot is written to
//! `docs/screenshots/job-page.png`.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, host_file, redact_job, start};
use fantoccini::{ClientBuilder, Locator};
use sluice_plugin_artifacts as artifacts;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// ChromeDriver on a port of its own, killed when dropped.
struct Driver(Child, u16);

impl Driver {
    fn start() -> Self {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: run scripts/setup browser"
            );
        }
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver(child, port)
    }

    /// A new headless browser session.
    async fn browser(&self, profile: &Path) -> fantoccini::Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1440,1100",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }),
        );
        ClientBuilder::native()
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.1))
            .await
            .expect("a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Poll `check` on the page every 100 ms until it gives a value, for at
/// most 30 s.
async fn eventually<T>(
    what: &str,
    page: &fantoccini::Client,
    mut check: impl AsyncFnMut(&fantoccini::Client) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check(page).await {
            return value;
        }
        if Instant::now() > deadline {
            let text = page
                .find(Locator::Css("body"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            panic!("{what} did not happen; the page shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the element `css` selects, if there is one.
async fn text_of(page: &fantoccini::Client, css: &str) -> Option<String> {
    page.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Whether the page is still the one loaded first (a reload forgets the
/// mark the test left on it).
async fn not_reloaded(page: &fantoccini::Client) -> bool {
    page.execute("return window.sluiceTestMark === 1;", vec![])
        .await
        .unwrap()
        .as_bool()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_a_tenants_job_live_its_swaps_and_nothing_of_other_tenants() {
    let state = tempfile::tempdir().unwrap();
    let (config, a, b) = host_file(state.path());
    let server = start(&config);
    let api = Client::new(&server);
    let redact = api.push_redact(&a);
    let filter = api.push(&a, artifacts::FILTER);
    let id = api.submit(&a, &redact_job("emails", &redact, ""));
    let b_redact = api.push_redact(&b);
    let b_id = api.submit(&b, &redact_job("b-emails", &b_redact, ""));
    let base = format!("http://{}", server.address());
    let driver = Driver::start();
    let profiles = tempfile::tempdir().unwrap();

    // Tenant a's page: the job's rate rises above 0, in the page first
    // loaded.
    let page = driver.browser(&profiles.path().join("a")).await;
    page.set_window_size(1440, 1100).await.unwrap();
    page.goto(&format!("{base}/#token={}", a.0)).await.unwrap();
    page.execute("window.sluiceTestMark = 1;", vec![])
        .await
        .unwrap();
    let rate_cell = format!("[data-testid='job-rate-{id}']");
    let rate = eventually("a rate above 0", &page, async |page| {
        let text = text_of(page, &rate_cell).await?;
        let rate: f64 = text.replace(',', "").parse().ok()?;
        (rate > 0.0).then_some(rate)
    })
    .await;
    assert!(rate > 0.0);
    assert!(not_reloaded(&page).await, "the page reloaded");
    assert!(
        page.current_url().await.unwrap().fragment().is_none(),
        "the token stays in the address bar"
    );

    // A swap: the page shows the new version, still without a reload.
    let keep_all = serde_json::json!({ "column": "email", "op": "is_not_null" });
    let body =
        serde_json::json!({ "transform": "transform-0", "plugin": filter, "config": keep_all });
    let (status, swapped) = api.post(
        &format!("/v1/jobs/{id}/swap"),
        Some(&a),
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{swapped}");
    eventually("the new version", &page, async |page| {
        let digest = page
            .find(Locator::Css("[data-testid='plugin-digest']"))
            .await
            .ok()?
            .attr("title")
            .await
            .ok()??;
        (digest == filter).then_some(())
    })
    .await;
    assert!(not_reloaded(&page).await, "the page reloaded");
    // Let the charts gather a few points before the screenshot.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let png = page.screenshot().await.unwrap();
    let path = if std::env::var_os("SLUICE_BLESS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots/job-page.png")
    } else {
        state.path().join("job-page.png")
    };
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, png).unwrap();
    page.close().await.unwrap();

    // Tenant b's page shows b's job, and never a's.
    let page = driver.browser(&profiles.path().join("b")).await;
    page.goto(&format!("{base}/#token={}", b.0)).await.unwrap();
    eventually("tenant b's job", &page, async |page| {
        text_of(page, &format!("[data-testid='job-row-{b_id}']")).await
    })
    .await;
    let rows = page
        .find_all(Locator::Css(&format!("[data-testid='job-row-{id}']")))
        .await
        .unwrap();
    assert!(rows.is_empty(), "tenant b sees tenant a's job");
    let body = text_of(&page, "body").await.unwrap();
    assert!(!body.contains(&id), "tenant b's page names a's job: {body}");
    page.close().await.unwrap();

    // A token no tenant has shows nothing and says so.
    let page = driver.browser(&profiles.path().join("none")).await;
    page.goto(&format!("{base}/#token=not-a-token"))
        .await
        .unwrap();
    eventually("the refusal", &page, async |page| {
        let text = text_of(page, "#connection").await?;
        text.contains("refused").then_some(())
    })
    .await;
    assert!(
        page.find_all(Locator::Css("#jobs tbody tr"))
            .await
            .unwrap()
            .is_empty()
    );
    page.close().await.unwrap();
    server.shut_down().unwrap();
}
