//! Browser test harness: headless Debian Chromium driven over WebDriver with `fantoccini`.
//!
//! [`Browser::start`] runs `chromedriver` on a free port on 127.0.0.1 as a child process in
//! its own process group (so the Chromium it launches goes with it), waits until it answers,
//! and opens a session on headless Chromium. Dropping the [`Browser`] kills the whole group;
//! [`Browser::close`] ends the session properly first.
//!
//! Chromium and its driver come from the Debian packages `chromium` and `chromium-driver`
//! (`.ci/run` installs them, with `fonts-dejavu-core` so screenshots have text). When either
//! is missing the harness panics saying so: the browser tests never pass without a browser.
//! `CHROMIUM` and `CHROMEDRIVER` in the environment override the two paths.
#![allow(dead_code, unreachable_pub)]

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Map, Value};
use tempfile::TempDir;

/// Where Debian's `chromium` package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's `chromium-driver` package puts the WebDriver server.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The Debian packages the harness needs, for the error messages.
const PACKAGES: &str = "chromium chromium-driver fonts-dejavu-core";

/// How long chromedriver may take to answer, and a session to open.
const START_WITHIN: Duration = Duration::from_secs(30);
/// How long the element helpers wait for an element to appear.
const ELEMENT_WITHIN: Duration = Duration::from_secs(10);

/// The Chromium command-line switches every session runs with.
pub const CHROME_ARGS: [&str; 5] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1000,800",
];

/// A headless Chromium session and the chromedriver that runs it.
pub struct Browser {
    client: Option<Client>,
    driver: Driver,
}

/// The chromedriver child process (leader of its own process group), killed with its group
/// and reaped on drop.
struct Driver {
    child: Child,
    /// Holds chromedriver's output (`driver.log`), shown when something fails.
    dir: TempDir,
}

impl Driver {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("driver.log")).unwrap_or_default()
    }

    fn kill(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // The whole group: chromedriver and the Chromium processes it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `path` from the environment variable `var`, else `default`; panics naming the Debian
/// packages when it is not there.
fn program(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.is_file(),
        "browser tests need headless Chromium and its WebDriver, but {} is missing: install \
         the Debian packages with `apt-get install -y {PACKAGES}` (.ci/run does), or point \
         {var} at the program",
        path.display(),
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free port on 127.0.0.1")
        .port()
}

/// Polls chromedriver's `/status` until it says it is ready; panics with its log when it
/// exits or does not answer in time.
async fn wait_ready(driver: &mut Driver, url: &str) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let deadline = Instant::now() + START_WITHIN;
    loop {
        if let Ok(Some(status)) = driver.child.try_wait() {
            panic!("chromedriver exited early ({status}):\n{}", driver.log());
        }
        if let Ok(r) = http.get(format!("{url}/status")).send().await {
            if let Ok(body) = r.json::<Value>().await {
                if body["value"]["ready"] == Value::Bool(true) {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer at {url} within {START_WITHIN:?}:\n{}",
            driver.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (1000×800 window).
    pub async fn start() -> Browser {
        let chromium = program("CHROMIUM", CHROMIUM);
        let chromedriver = program("CHROMEDRIVER", CHROMEDRIVER);

        let dir = tempfile::Builder::new()
            .prefix("oauth-edge-browser")
            .tempdir()
            .unwrap();
        let log = File::create(dir.path().join("driver.log")).unwrap();
        let port = free_port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let mut driver = Driver { child, dir };
        let url = format!("http://127.0.0.1:{port}");
        wait_ready(&mut driver, &url).await;

        let mut caps = Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "args": CHROME_ARGS, "binary": chromium }),
        );
        // chromedriver speaks plain HTTP on loopback: no TLS connector needed.
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let connect = builder.connect(&url);
        let client = match tokio::time::timeout(START_WITHIN, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!(
                "chromedriver could not start {}: {e}\n{}",
                chromium.display(),
                driver.log()
            ),
            Err(_) => panic!(
                "no Chromium session within {START_WITHIN:?}\n{}",
                driver.log()
            ),
        };
        Browser {
            client: Some(client),
            driver,
        }
    }

    /// The process id of chromedriver, which is also its process group's id.
    pub fn driver_pid(&self) -> u32 {
        self.driver.child.id()
    }

    /// The fantoccini client, for anything the helpers do not cover.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser is closed")
    }

    /// Loads `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.client()
            .wait()
            .at_most(ELEMENT_WITHIN)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css:?} on the page: {e}"))
    }

    /// Types `text` into the element matched by `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        element
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css:?}: {e}"));
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css:?}: {e}"));
    }

    /// Clicks the element matched by `css` (a submit button navigates; the next helper
    /// waits for what it looks for).
    pub async fn click(&self, css: &str) {
        self.element(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css:?}: {e}"));
    }

    /// The rendered text of the element matched by `css`, waiting for it to appear. An
    /// element replaced by a navigation while it was read is looked up again.
    pub async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + ELEMENT_WITHIN;
        loop {
            match self.element(css).await.text().await {
                Ok(t) => return t,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("text of {css:?}: {e}"),
            }
        }
    }

    /// Waits until the element matched by `css` reads `expected` (after a click, the old page
    /// may still be showing for a moment), and panics with what it read instead.
    pub async fn wait_text(&self, css: &str, expected: &str) {
        let deadline = Instant::now() + ELEMENT_WITHIN;
        let mut seen = String::new();
        while Instant::now() < deadline {
            if let Ok(el) = self.client().find(Locator::Css(css)).await {
                if let Ok(t) = el.text().await {
                    if t == expected {
                        return;
                    }
                    seen = t;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{css:?} reads {seen:?}, not {expected:?}, after {ELEMENT_WITHIN:?}");
    }

    /// The URL of the current page.
    pub async fn current_url(&self) -> String {
        self.client()
            .current_url()
            .await
            .expect("current URL")
            .to_string()
    }

    /// Writes a PNG screenshot of the viewport to `path` (parent directories created) and
    /// returns its size in bytes.
    pub async fn screenshot(&self, path: impl AsRef<Path>) -> usize {
        let path = path.as_ref();
        let png = self.client().screenshot().await.expect("screenshot");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "the screenshot is not a PNG"
        );
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        png.len()
    }

    /// Ends the WebDriver session (Chromium exits), then stops chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            client.close().await.expect("close the WebDriver session");
        }
        self.driver.kill();
    }
}
