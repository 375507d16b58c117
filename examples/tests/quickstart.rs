//! The quickstart does what its printed curl lines promise, and reloads its
//! rules file (refusing a bad one).

mod support;

use std::time::Duration;

use support::{Running, addr_in};

/// One printed line: `curl -s [-H 'k: v'] [-b 'c=v'] 'URL'   # served by EXPECTED`.
struct Curl {
    headers: Vec<(String, String)>,
    url: String,
    expected: String,
}

fn parse(line: &str) -> Curl {
    let (cmd, expected) = line.split_once("# ").expect("an expectation");
    let parts: Vec<&str> = cmd.split('\'').collect();
    // Odd parts are quoted; the flag before each sits at the end of the even part.
    let mut headers = Vec::new();
    let mut url = String::new();
    for i in (1..parts.len()).step_by(2) {
        let flag = parts[i - 1].trim_end();
        if flag.ends_with("-H") {
            let (n, v) = parts[i].split_once(": ").unwrap();
            headers.push((n.to_owned(), v.to_owned()));
        } else if flag.ends_with("-b") {
            headers.push(("cookie".to_owned(), parts[i].to_owned()));
        } else {
            url = parts[i].to_owned();
        }
    }
    Curl {
        headers,
        url,
        expected: expected.trim().to_owned(),
    }
}

async fn get(url: &str, headers: &[(String, String)]) -> String {
    let mut req = reqwest::Client::new().get(url);
    for (n, v) in headers {
        req = req.header(n, v);
    }
    req.send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn printed_curl_lines_hold() {
    let app = Running::start(env!("CARGO_BIN_EXE_quickstart"), &["--port", "0"]);
    let lines = app.until("metrics per variant");
    let curls: Vec<Curl> = lines
        .iter()
        .filter(|l| l.trim_start().starts_with("curl "))
        .map(|l| parse(l))
        .collect();
    assert_eq!(curls.len(), 7, "{lines:?}");
    for c in &curls {
        let body = get(&c.url, &c.headers).await;
        assert_eq!(body.trim(), c.expected, "{} {:?}", c.url, c.headers);
    }
    let counters = get(
        &format!("http://{}/_gray/counters", addr_in(&lines[0])),
        &[],
    )
    .await;
    // Prometheus text, one series per variant, rule, reason and status.
    let series = |s: &str| counters.lines().any(|l| l == s);
    assert!(
        series(
            r#"graymatch_requests_total{variant="gray",rule="canary-20",reason="rule",status="2xx"} 1"#
        ),
        "{counters}"
    );
    assert!(
        series(
            r#"graymatch_requests_total{variant="stable",rule="",reason="default",status="2xx"} 3"#
        ),
        "{counters}"
    );
    assert!(
        counters
            .contains("graymatch_request_duration_seconds_bucket{variant=\"gray\",le=\"0.005\"}"),
        "{counters}"
    );
}

#[tokio::test]
async fn port_from_the_environment() {
    // PORT is read when --port is absent; 0 picks a free port.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_quickstart"));
    cmd.env("PORT", "not-a-port");
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid port \"not-a-port\""));
}

#[tokio::test]
async fn a_rules_file_overrides_and_reloads() {
    let dir = std::env::temp_dir().join(format!("graymatch-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rules.yaml");
    std::fs::write(&path, "default: stable\nvariants: [stable, gray]\n").unwrap();
    let app = Running::start(
        env!("CARGO_BIN_EXE_quickstart"),
        &["--port", "0", "--rules", path.to_str().unwrap()],
    );
    let url = format!("http://{}/", addr_in(&app.line()));
    assert!(get(&url, &[]).await.starts_with("served by stable"));

    // mtime resolution can be coarse: wait before rewriting.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&path, "default: gray\nvariants: [stable, gray]\n").unwrap();
    app.until("reloaded ");
    assert_eq!(
        get(&url, &[]).await.trim(),
        "served by gray: variant=gray rule=- reason=default"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&path, "default: gray\nvariants: [stable]\n").unwrap();
    let refused = app.until("refused");
    assert!(
        refused
            .last()
            .unwrap()
            .contains("variant `gray` is not declared"),
        "{refused:?}"
    );
    assert!(get(&url, &[]).await.starts_with("served by gray"));
}
