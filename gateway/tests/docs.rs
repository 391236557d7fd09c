//! The commands of `README.md` and `docs/*.md`, run as a reader runs them.
//!
//! Every fenced `sh` block of those files says, in an HTML comment on the line before it, how
//! it is tested; a block that says nothing fails the test, so a new example cannot be added
//! without a decision. The comments:
//!
//! - `<!-- doc-test: SCENARIO run -->`: the block's commands run, in order, in one `bash`
//!   session per scenario (as in one terminal), in the scenario's own directory. A command
//!   `cargo run --release -p oauth-edge-gateway -- serve …` starts the gateway built for these
//!   tests with those arguments, in the background, as a second terminal would; any other
//!   `cargo run … -- ARGS` runs that binary with `ARGS` in the shell. Every comment
//!   line `#   text` (three spaces) after a command is a line its output must hold, with `…`
//!   standing for anything.
//! - `<!-- doc-test: SCENARIO file NAME -->` before any block: the block is the file `NAME`
//!   in the scenario's directory; `SCENARIO append NAME` adds the block to it.
//! - `<!-- doc-test: SCENARIO browser FLOW VAR USER PASSWORD -->` before a block that shows a
//!   page's outcome: what the reader does in a browser, done in headless Chromium. It opens
//!   the URL in the shell variable `VAR` and signs in as `USER`; `consent` then allows, checks
//!   that the browser lands on the block's URL (`…` for anything) and sets `$CODE` in the
//!   shell to the code in it; `device` allows the device and waits for "Device connected".
//!   A command `NAME='…'` (a value the reader pastes from the browser) is then skipped, as
//!   long as the browser step set `NAME`.
//! - `<!-- doc-test: packages -->`: an `apt-get install` line; every package it names must be
//!   one `.ci/run` installs, so the line CI proves is the line readers copy.
//! - `<!-- doc-test: suite -->`: the README's test command, which `.ci/run` runs word for word.
//! - `<!-- doc-test: not run: REASON -->`: said why, for the record.
//!
//! The documents name the gateway `127.0.0.1:8080`, the admin API `127.0.0.1:9901`, an
//! upstream `127.0.0.1:8000` and a client application `127.0.0.1:8765`. Each scenario gets
//! free ports instead, written over those addresses (plain and URL-encoded) in its files,
//! commands and expected output, and echo servers as its upstream and its application.

mod browser;
mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use browser::Browser;
use common::{free_addr, Echo, BIN};

/// The project's root, where `README.md` is.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The documents whose blocks are tested.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// A fenced block and the `doc-test` comment before it.
#[derive(Debug, Clone)]
struct Block {
    /// `docs/profiles.md:199`: where the fence opens.
    at: String,
    lang: String,
    marker: Option<String>,
    text: String,
}

fn blocks(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.strip_prefix(root()).unwrap().display().to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(lang) = lines[i].strip_prefix("```") {
            let start = i;
            let mut body = String::new();
            i += 1;
            while i < lines.len() && !lines[i].starts_with("```") {
                body.push_str(lines[i]);
                body.push('\n');
                i += 1;
            }
            let marker = start
                .checked_sub(1)
                .and_then(|p| lines[p].trim().strip_prefix("<!-- doc-test:"))
                .and_then(|m| m.strip_suffix("-->"))
                .map(|m| m.trim().to_string());
            out.push(Block {
                at: format!("{name}:{}", start + 1),
                lang: lang.trim().to_string(),
                marker,
                text: body,
            });
        }
        i += 1;
    }
    out
}

/// What the documents' addresses become in one scenario.
struct Ports {
    listen: SocketAddr,
    admin: SocketAddr,
    upstream: SocketAddr,
    app: SocketAddr,
}

impl Ports {
    fn apply(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (documented, port) in [
            ("8080", self.listen.port()),
            ("9901", self.admin.port()),
            ("8000", self.upstream.port()),
            ("8765", self.app.port()),
        ] {
            text = text
                .replace(
                    &format!("127.0.0.1:{documented}"),
                    &format!("127.0.0.1:{port}"),
                )
                .replace(
                    &format!("127.0.0.1%3A{documented}"),
                    &format!("127.0.0.1%3A{port}"),
                );
        }
        text
    }
}

/// One terminal: a `bash` whose standard output and error are read line by line.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Shell {
    fn start(dir: &Path) -> Shell {
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(dir)
            .env_remove("OAUTH_EDGE_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bash");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });
        let mut shell = Shell {
            child,
            stdin,
            lines,
        };
        shell.run("exec 2>&1");
        shell
    }

    /// Runs `command` and returns what it printed, with its exit status.
    fn run(&mut self, command: &str) -> (String, i32) {
        const END: &str = "@@doc-test-end";
        writeln!(self.stdin, "{command}\nprintf '\\n{END} %d\\n' $?").unwrap();
        self.stdin.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut out = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("`{command}` did not finish within 30 s:\n{out}"));
            if let Some(status) = line.strip_prefix(END) {
                return (out, status.trim().parse().unwrap());
            }
            out.push_str(line.trim_end_matches('\r'));
            out.push('\n');
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The commands of a block: comment lines dropped, `\`-continued lines joined, each with the
/// `#   ` lines after it.
fn commands(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if pending.is_empty() && trimmed.starts_with('#') {
            if let Some(expected) = line.strip_prefix("#   ") {
                if !expected.starts_with(' ') {
                    let (_, want) = out.last_mut().expect("expected output after a command");
                    want.push(expected.trim_end().to_string());
                }
            }
            continue;
        }
        if trimmed.is_empty() && pending.is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                pending.push_str(part);
                pending.push(' ');
            }
            None => {
                pending.push_str(line);
                out.push((std::mem::take(&mut pending), Vec::new()));
            }
        }
    }
    assert!(pending.is_empty(), "a block ends in a continued line");
    out
}

/// Whether `output` has a line matching `want`, where `…` stands for anything.
fn holds(output: &str, want: &str) -> bool {
    let parts: Vec<&str> = want.split('…').collect();
    output.lines().any(|line| {
        let line = line.trim_end();
        let Some(mut rest) = line.strip_prefix(parts[0]) else {
            return false;
        };
        for (i, part) in parts.iter().enumerate().skip(1) {
            if i == parts.len() - 1 {
                return rest.ends_with(part);
            }
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.is_empty()
    })
}

/// A gateway a scenario started, stopped when the scenario ends.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scenario: its directory, its ports, its terminal and the gateways it started.
struct Scenario {
    name: String,
    dir: tempfile::TempDir,
    ports: Ports,
    shell: Shell,
    gateways: Vec<Started>,
    _echo: Echo,
    _app: Echo,
    /// What was run, for the record the test prints.
    ran: Vec<String>,
    /// How many commands ran.
    commands: usize,
}

impl Scenario {
    async fn new(name: &str) -> Scenario {
        let echo = Echo::start("echo").await;
        let app = Echo::start("app").await;
        let dir = tempfile::tempdir().unwrap();
        // The project's scripts, where a reader in a checkout finds them.
        std::os::unix::fs::symlink(root().join("scripts"), dir.path().join("scripts")).unwrap();
        let shell = Shell::start(dir.path());
        Scenario {
            name: name.to_string(),
            ports: Ports {
                listen: free_addr(),
                admin: free_addr(),
                upstream: echo.addr,
                app: app.addr,
            },
            dir,
            shell,
            gateways: Vec::new(),
            _echo: echo,
            _app: app,
            ran: Vec::new(),
            commands: 0,
        }
    }

    /// Writes (or adds to) a file of the scenario, with the scenario's addresses. A config
    /// gets its listener and admin address when it is served (`patch_config`).
    fn file(&mut self, name: &str, text: &str, append: bool) {
        let path = self.dir.path().join(name);
        let mut text = self.ports.apply(text);
        if append {
            text = std::fs::read_to_string(&path).unwrap() + "\n" + &text;
        }
        std::fs::write(&path, text).unwrap();
    }

    /// The config as the gateway reads it: listeners and admin address set where unset.
    fn patch_config(&self, path: &Path) {
        let text = std::fs::read_to_string(path).unwrap();
        let mut doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| {
            panic!("{}: not TOML: {e}", path.display());
        });
        let gateway = doc
            .entry("gateway")
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .unwrap();
        gateway.entry("listeners").or_insert_with(|| {
            let mut l = toml::Table::new();
            l.insert("address".into(), self.ports.listen.to_string().into());
            toml::Value::Array(vec![toml::Value::Table(l)])
        });
        let admin = gateway
            .entry("admin")
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .unwrap();
        admin
            .entry("address")
            .or_insert_with(|| self.ports.admin.to_string().into());
        // The file keeps the mode the reader gave it (the docs say `chmod 600`).
        std::fs::write(path, toml::to_string(&doc).unwrap()).unwrap();
    }

    /// Starts `oauth-edge <args>` in the scenario's directory and waits until it serves.
    async fn serve(&mut self, args: &str) {
        let mut args: Vec<String> = args.split_whitespace().map(String::from).collect();
        if args.iter().any(|a| a == "--demo") {
            for (flag, addr) in [
                ("--listen", self.ports.listen),
                ("--admin-listen", self.ports.admin),
            ] {
                args.push(flag.into());
                args.push(addr.to_string());
            }
        }
        if let Some(i) = args.iter().position(|a| a == "--config" || a == "-c") {
            self.patch_config(&self.dir.path().join(&args[i + 1]));
        }
        let addresses = self.dir.path().join("addresses.json");
        let _ = std::fs::remove_file(&addresses);
        let log = self
            .dir
            .path()
            .join(format!("gateway-{}.log", self.gateways.len()));
        let child = Command::new(BIN)
            .args(&args)
            .arg("--address-file")
            .arg(&addresses)
            .current_dir(self.dir.path())
            .env_remove("OAUTH_EDGE_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        self.gateways.push(Started(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        let healthz = format!("http://{}/healthz", self.ports.admin);
        loop {
            let child = &mut self.gateways.last_mut().unwrap().0;
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "[{}] oauth-edge {args:?} exited with {status}:\n{}",
                    self.name,
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if addresses.exists() {
                if let Ok(r) = reqwest::get(&healthz).await {
                    if r.status() == 200 {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "[{}] not ready in 20 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a block's commands, checking what each printed.
    async fn run(&mut self, block: &Block) {
        for (command, want) in commands(&block.text) {
            let command = self.ports.apply(&command);
            const CARGO_RUN: &str = "cargo run --release -p oauth-edge-gateway -- ";
            if let Some(args) = command.trim().strip_prefix(CARGO_RUN) {
                if args.starts_with("serve ") {
                    self.commands += 1;
                    self.serve(args).await;
                    self.ran.push(format!("{}: oauth-edge {args}", block.at));
                    continue;
                }
            }
            // Any other command of the binary runs in the shell, as the binary built here.
            let command = command.replace(CARGO_RUN, &format!("{BIN} "));
            if let Some(name) = pasted(&command) {
                let (_, set) = self.shell.run(&format!("[ -n \"${{{name}:-}}\" ]"));
                assert_eq!(
                    set, 0,
                    "[{}] {}: `{command}` wants a value no browser step gave",
                    self.name, block.at
                );
                self.ran
                    .push(format!("{}: {name} from the browser", block.at));
                continue;
            }
            let (output, status) = self.shell.run(&command);
            self.commands += 1;
            self.ran.push(format!("{}: {command}", block.at));
            assert_eq!(
                status, 0,
                "[{}] {}: `{command}` failed:\n{output}",
                self.name, block.at
            );
            for w in want {
                let w = self.ports.apply(&w);
                assert!(
                    holds(&output, &w),
                    "[{}] {}: `{command}` printed no line like\n  {w}\nbut:\n{output}",
                    self.name,
                    block.at
                );
            }
        }
    }
}

impl Scenario {
    /// What the reader does in the browser (see the module's comment).
    async fn browser(&mut self, block: &Block, flow: &str, var: &str, user: &str, password: &str) {
        let (url, status) = self.shell.run(&format!("printf '%s\\n' \"${var}\""));
        assert_eq!(status, 0);
        let url = url.trim().to_string();
        assert!(
            url.starts_with("http://"),
            "[{}] {}: ${var} is `{url}`",
            self.name,
            block.at
        );
        let b = Browser::start().await;
        b.goto(&url).await;
        if flow == "device" {
            b.wait_text("h1", "Connect a device").await;
            b.click("button[type=submit]").await;
        }
        b.wait_text("h1", "Sign in").await;
        b.fill("#username", user).await;
        b.fill("#password", password).await;
        b.click("button[type=submit]").await;
        match flow {
            "consent" => {
                b.wait_text("h1", "Allow access?").await;
                b.click("button[value=allow]").await;
                let want = self.ports.apply(block.text.trim());
                let deadline = Instant::now() + Duration::from_secs(10);
                let landed = loop {
                    let at = b.current_url().await;
                    if holds(&at, &want) {
                        break at;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "[{}] {}: the browser is at {at}, not at\n  {want}",
                        self.name,
                        block.at
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                };
                let code = url_param(&landed, "code").expect("a code in the redirect");
                let (_, status) = self.shell.run(&format!("CODE='{code}'"));
                assert_eq!(status, 0);
            }
            "device" => {
                b.wait_text("h1", "Connect this device?").await;
                b.click("button[value=allow]").await;
                b.wait_text("h1", "Device connected").await;
            }
            other => panic!("{}: no browser flow `{other}`", block.at),
        }
        b.close().await;
        self.ran.push(format!(
            "{}: in Chromium: {flow} as {user} at ${var}",
            block.at
        ));
    }
}

/// `NAME='…'`: a value the reader pastes.
fn pasted(command: &str) -> Option<&str> {
    let (name, value) = command.trim().split_once('=')?;
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_');
    (ok && value.starts_with('\'') && value.ends_with('\'') && value.contains('…')).then_some(name)
}

/// The value of `name` in `url`'s query.
fn url_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The scenario `name`, started on its first use.
async fn scenario<'a>(all: &'a mut BTreeMap<String, Scenario>, name: &str) -> &'a mut Scenario {
    if !all.contains_key(name) {
        all.insert(name.to_string(), Scenario::new(name).await);
    }
    all.get_mut(name).unwrap()
}

/// The packages `.ci/run` installs.
fn ci_packages() -> Vec<String> {
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    let line = ci
        .lines()
        .find(|l| l.trim_start().starts_with("for pkg in "))
        .expect(".ci/run lists its packages on a `for pkg in` line");
    line.trim_start()["for pkg in ".len()..]
        .split(';')
        .next()
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_command_runs_as_written() {
    let ci = ci_packages();
    let mut scenarios: BTreeMap<String, Scenario> = BTreeMap::new();
    let mut record = Vec::new();
    for doc in documents() {
        for block in blocks(&doc) {
            let Some(marker) = block.marker.clone() else {
                assert!(
                    block.lang != "sh",
                    "{}: an `sh` block without a `<!-- doc-test: … -->` comment",
                    block.at
                );
                continue;
            };
            let words: Vec<&str> = marker.split_whitespace().collect();
            match words.as_slice() {
                ["packages"] => {
                    let names: Vec<&str> = block
                        .text
                        .split_whitespace()
                        .skip_while(|w| *w != "install")
                        .skip(1)
                        .filter(|w| !w.starts_with('-'))
                        .collect();
                    assert!(!names.is_empty(), "{}: no packages", block.at);
                    for n in names {
                        assert!(
                            ci.iter().any(|c| c == n),
                            "{}: `{n}` is not installed by .ci/run",
                            block.at
                        );
                    }
                    record.push(format!("{}: packages checked against .ci/run", block.at));
                }
                ["suite"] => {
                    let ci_text = std::fs::read_to_string(root().join(".ci/run")).unwrap();
                    for line in block.text.lines().filter(|l| !l.trim().is_empty()) {
                        assert!(
                            ci_text.contains(&format!("test_cmd='{line}'")),
                            "{}: `{line}` is not the command .ci/run runs",
                            block.at
                        );
                    }
                    record.push(format!("{}: the command .ci/run runs", block.at));
                }
                ["not", "run:", ..] => {
                    record.push(format!("{}: not run ({marker})", block.at));
                }
                [name, "run"] => {
                    assert_eq!(block.lang, "sh", "{}: `run` is for sh blocks", block.at);
                    scenario(&mut scenarios, name).await.run(&block).await;
                }
                [name, "browser", flow, var, user, password] => {
                    let s = scenarios
                        .get_mut(*name)
                        .unwrap_or_else(|| panic!("{}: scenario {name} has not started", block.at));
                    s.browser(&block, flow, var, user, password).await;
                }
                [name, verb @ ("file" | "append"), file] => {
                    let s = scenario(&mut scenarios, name).await;
                    s.file(file, &block.text, *verb == "append");
                    s.ran.push(format!("{}: {verb} {file}", block.at));
                }
                _ => panic!("{}: unknown doc-test comment `{marker}`", block.at),
            }
        }
    }
    for (name, s) in &scenarios {
        assert!(s.commands > 0, "scenario {name} runs nothing");
        record.push(format!("scenario {name}:"));
        record.extend(s.ran.iter().map(|r| format!("  {r}")));
    }
    // The record of what ran, for whoever reads the test's output.
    println!("{}", record.join("\n"));
}

#[test]
fn expected_output_matching() {
    assert!(holds("HTTP/1.1 200 OK\n", "HTTP/1.1 200 OK"));
    assert!(!holds("HTTP/1.1 401 Unauthorized\n", "HTTP/1.1 200 OK"));
    assert!(holds(
        r#"{"access_token":"oea_x","expires_in":3600}"#,
        r#"{"access_token":"oea_…","expires_in":3600}"#
    ));
    assert!(!holds(
        r#"{"access_token":"oea_x","expires_in":60}"#,
        r#"{"access_token":"oea_…","expires_in":3600}"#
    ));
    assert!(holds("a b c", "a…"));
    assert!(!holds("xa b c", "a…"));
    let c = commands("# prose\nA=1 \\\n  B=2\n#   out\n#    prose again\necho x\n");
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].1, vec!["out".to_string()]);
    assert!(c[1].1.is_empty());
}

/// The README's prerequisites line, word for word.
fn readme_prerequisites_line() -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    readme
        .lines()
        .find(|l| l.starts_with("sudo apt-get update && sudo apt-get install -y build-essential"))
        .expect("the README's prerequisites line")
        .to_string()
}

#[test]
fn the_prerequisites_check_names_what_is_missing() {
    let script = root().join("scripts/check-prerequisites.sh");
    // This machine has everything (CI installs it).
    let ok = Command::new("sh").arg(&script).output().unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // A PATH with every tool but cmake.
    let bin = tempfile::tempdir().unwrap();
    for tool in ["cargo", "cc", "c++", "make", "perl", "pkg-config"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let path = String::from_utf8(found.stdout).unwrap();
        std::os::unix::fs::symlink(path.trim(), bin.path().join(tool)).unwrap();
    }
    let out = Command::new("/bin/sh")
        .arg(&script)
        .env_clear()
        .env("PATH", bin.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing: cmake\n"), "{err}");
    // Its advice is the README's line.
    assert!(err.contains(&readme_prerequisites_line()), "{err}");

    // Nothing at all on the PATH: still a message, from shell builtins alone.
    let out = Command::new("/bin/sh")
        .arg(&script)
        .env_clear()
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cargo") && err.contains("rustup"), "{err}");
}

/// The values of `key=` lines in a systemd unit.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// Runs `command` (the binary and its arguments as the unit or the image names them) against
/// the binary built here and a config of its own: a check exits 0; `serve` starts, listens,
/// and stops within `stop_within` of SIGTERM with status 0.
async fn run_deployed(command: &[String], config: &Path, stop_within: Duration) {
    let dir = config.parent().unwrap();
    let (program, args) = command.split_first().unwrap();
    assert!(program.ends_with("/oauth-edge"), "{program}");
    let args: Vec<String> = args
        .iter()
        .map(|a| match a.as_str() {
            "/etc/oauth-edge/oauth-edge.toml" => config.display().to_string(),
            _ => a.clone(),
        })
        .collect();
    if args[0] != "serve" {
        let out = Command::new(BIN)
            .args(&args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let addresses = dir.join("addresses.json");
    let mut child = Command::new(BIN)
        .args(&args)
        .arg("--address-file")
        .arg(&addresses)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Serving, not only listening: the address file appears once the sockets listen, before
    // the server has set up its signal handling; `/healthz` answers once it serves.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "{args:?} exited");
        assert!(Instant::now() < deadline, "{args:?} did not serve");
        if let Ok(text) = std::fs::read_to_string(&addresses) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let healthz = format!("http://{}/healthz", v["admin"].as_str().unwrap());
            if reqwest::get(&healthz)
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + stop_within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{args:?} stopped with {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_file(&addresses);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_unit_and_the_image_run_the_commands_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("oauth-edge.toml");
    let (listen, admin) = (free_addr(), free_addr());
    common::write_private(
        &config,
        &format!(
            "[store]\nkind = \"sqlite\"\npath = {:?}\n\n[gateway.admin]\naddress = \"{admin}\"\n\n[[gateway.listeners]]\naddress = \"{listen}\"\n",
            dir.path().join("edge.db").display().to_string()
        ),
    );

    // The unit: its check before each start, then the server, stopped as systemd stops it.
    let unit = std::fs::read_to_string(root().join("deploy/oauth-edge.service")).unwrap();
    assert_eq!(unit_values(&unit, "KillSignal"), ["SIGTERM"]);
    let stop: u64 = unit_values(&unit, "TimeoutStopSec")[0].parse().unwrap();
    assert!(
        stop > 10,
        "TimeoutStopSec must exceed the default grace period"
    );
    let words = |line: &str| {
        line.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let pre = unit_values(&unit, "ExecStartPre");
    let start = unit_values(&unit, "ExecStart");
    assert_eq!((pre.len(), start.len()), (1, 1));
    run_deployed(&words(pre[0]), &config, Duration::from_secs(stop)).await;
    run_deployed(&words(start[0]), &config, Duration::from_secs(stop)).await;
    // The user and the state directory the docs tell operators to prepare.
    assert_eq!(unit_values(&unit, "User"), ["oauth-edge"]);
    assert_eq!(unit_values(&unit, "StateDirectory"), ["oauth-edge"]);

    // The image: what it builds is this binary, and its command serves.
    let docker = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(docker.contains("cargo build --release --locked -p oauth-edge-gateway"));
    assert!(docker.contains("target/release/oauth-edge "));
    let json_words = |prefix: &str| -> Vec<String> {
        let line = docker.lines().find(|l| l.starts_with(prefix)).unwrap();
        serde_json::from_str(&line[prefix.len()..]).unwrap()
    };
    let entry = json_words("ENTRYPOINT ");
    assert_eq!(entry, ["oauth-edge"]);
    let mut command = vec!["/usr/local/bin/oauth-edge".to_string()];
    command.extend(json_words("CMD "));
    run_deployed(&command, &config, Duration::from_secs(15)).await;
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            code = !code;
        } else if !code && line.starts_with('#') {
            let heading = line.trim_start_matches('#');
            if heading.starts_with(' ') {
                out.push(anchor(heading));
            }
        }
    }
    out
}

#[test]
fn every_link_between_the_documents_resolves() {
    assert_eq!(
        anchor("Gateway configuration: `[gateway]`"),
        "gateway-configuration-gateway"
    );
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let target = &rest[..rest.find(')').unwrap()];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            let path = if file.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap().join(file)
            };
            assert!(path.exists(), "{}: no {target}", doc.display());
            if !fragment.is_empty() {
                let there = std::fs::read_to_string(&path).unwrap();
                assert!(
                    anchors(&there).iter().any(|a| a == fragment),
                    "{}: {target}: no such heading",
                    doc.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} links");
}
