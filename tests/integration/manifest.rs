//! The manifest over real HTTP: conditional refresh, retries, stale-on-error across a restart,
//! signatures, manual overrides, credentials.

use std::sync::atomic::Ordering;
use std::time::Duration;

use switchboard::connector::{desired_set, manifest_specs};
use switchboard::health::Health;
use switchboard::manifest::loader::{LoaderOptions, ManifestLoader, ManifestSource, Refresh};
use switchboard::manifest::sign;
use switchboard::registry::RegistrySnapshot;
use switchboard::session::http_client;
use switchboard_fixture::service_map::{ManifestServer, service_map};
use switchboard_fixture::{Fixture, Knobs};

use crate::support::*;

const KEY: &[u8] = b"team signing key";

fn signed(map: &serde_json::Value, key: &[u8]) -> String {
    let mut map = map.clone();
    map["signature"] = sign(&map, key).into();
    map.to_string()
}

fn loader(
    server: &ManifestServer,
    cache_dir: &std::path::Path,
    key: Option<&[u8]>,
) -> ManifestLoader {
    ManifestLoader::new(
        ManifestSource::parse(&server.url()).unwrap(),
        http_client().unwrap(),
        LoaderOptions {
            key: key.map(<[u8]>::to_vec),
            backoff_base: Duration::from_millis(5),
            backoff_cap: Duration::from_millis(20),
            cache_path: Some(cache_dir.join("manifest-cache.json")),
            ..LoaderOptions::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn manifest_connectors_connect_and_refreshes_are_conditional() {
    let fleet = [
        Fixture::start(Knobs::default()).await.unwrap(),
        Fixture::start(Knobs::default()).await.unwrap(),
    ];
    let map = service_map(&[("wiki", fleet[0].url()), ("docs", fleet[1].url())], 300);
    let server = ManifestServer::start(map.to_string()).await.unwrap();
    server.set_max_age(Some(60));
    let cache = tempfile::tempdir().unwrap();
    let mut loader = loader(&server, cache.path(), None);
    assert_eq!(loader.refresh().await, Refresh::Updated);

    let state = loader.current().unwrap();
    assert!(state.stale.is_none());
    let by_max_age = std::time::SystemTime::now() + Duration::from_secs(61);
    assert!(
        state.fresh_until < by_max_age,
        "Cache-Control: max-age=60 bounds freshness below the 300 s ttl"
    );

    let specs = desired_set(
        &manifest_specs(state.manifest.clone()).await,
        &RegistrySnapshot::default(),
    );
    let connected = one_shot(specs, &http_client().unwrap(), 16).await;
    let states: Vec<_> = connected
        .reports()
        .iter()
        .map(|r| (r.id.as_str(), r.state))
        .collect();
    assert_eq!(
        states,
        [("wiki", Health::Healthy), ("docs", Health::Healthy)]
    );
    connected.close().await;

    assert_eq!(loader.refresh().await, Refresh::NotModified);
    assert_eq!(
        server.counters().conditional.load(Ordering::Relaxed),
        1,
        "the refresh sent If-None-Match"
    );
    assert_eq!(server.counters().not_modified.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_are_retried_with_backoff() {
    let map = service_map(&[("wiki", "http://127.0.0.1:9/mcp".into())], 300);
    let server = ManifestServer::start(map.to_string()).await.unwrap();
    server.fail_next(2);
    let cache = tempfile::tempdir().unwrap();
    let mut loader = loader(&server, cache.path(), None);
    assert_eq!(
        loader.refresh().await,
        Refresh::Updated,
        "the third attempt succeeds"
    );
    assert_eq!(server.counters().requests.load(Ordering::Relaxed), 3);

    server.set_status(Some(404));
    let outcome = loader.refresh().await;
    assert!(
        matches!(&outcome, Refresh::Stale(reason) if reason.contains("404")),
        "{outcome:?}"
    );
    assert_eq!(
        server.counters().requests.load(Ordering::Relaxed),
        4,
        "a 404 is not retried"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_refreshes_keep_the_last_good_manifest_even_across_a_restart() {
    let map = service_map(
        &[
            ("wiki", "http://127.0.0.1:9/mcp".into()),
            ("docs", "http://127.0.0.1:9/mcp".into()),
        ],
        300,
    );
    let server = ManifestServer::start(signed(&map, KEY)).await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut first = loader(&server, cache.path(), Some(KEY));
    assert_eq!(first.refresh().await, Refresh::Updated);

    let mut bad_cases = vec![
        ("outage", None, "503"),
        (
            "malformed",
            Some("{\"connectors\": [".to_string()),
            "does not parse",
        ),
        (
            "badly signed",
            Some(signed(&map, b"someone else's key")),
            "signature does not match",
        ),
        ("unsigned", Some(map.to_string()), "no signature"),
    ];
    let mut invalid = map.clone();
    invalid["connectors"][1]["endpoint"] = "ftp://files".into();
    bad_cases.push((
        "invalid",
        Some(signed(&invalid, KEY)),
        "connectors[1] (id \"docs\"): endpoint",
    ));
    for (case, body, expected) in bad_cases {
        match body {
            None => server.set_status(Some(503)),
            Some(body) => {
                server.set_status(None);
                server.set_body(body);
            }
        }
        let outcome = first.refresh().await;
        assert!(
            matches!(&outcome, Refresh::Stale(reason) if reason.contains(expected)),
            "{case}: {outcome:?}"
        );
        let state = first.current().unwrap();
        assert_eq!(
            state.manifest.connectors.len(),
            2,
            "{case}: the last good manifest is kept"
        );
        assert!(
            state.stale.as_deref().unwrap().contains(expected),
            "{case}: the reason is shown"
        );
    }

    // A restart while the source is still broken: the disk cache supplies the last good one.
    let mut restarted = loader(&server, cache.path(), Some(KEY));
    let cached = restarted.current().expect("the cache is loaded at start");
    assert!(
        cached.stale.as_deref().unwrap().contains("cache"),
        "{:?}",
        cached.stale
    );
    assert_eq!(cached.manifest.connectors.len(), 2);
    assert!(matches!(restarted.refresh().await, Refresh::Stale(_)));
    assert_eq!(restarted.current().unwrap().manifest.connectors.len(), 2);

    // A cache is no way around the signature: with another key it is not trusted.
    let other_key = loader(&server, cache.path(), Some(b"rotated key"));
    assert!(
        other_key.current().is_none(),
        "a cache that fails the signature check is ignored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_toggle_disables_a_manifest_connector() {
    let fixture = Fixture::start(Knobs::default()).await.unwrap();
    let map = service_map(&[("wiki", fixture.url())], 300);
    let manifest = switchboard::manifest::Manifest::parse(&map.to_string(), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path()).await;
    registry.set_override("wiki", Some(false)).await.unwrap();
    let specs = desired_set(
        &manifest_specs(std::sync::Arc::new(manifest)).await,
        &registry.snapshot(),
    );
    let connected = one_shot(specs, &http_client().unwrap(), 16).await;
    assert_eq!(connected.reports()[0].state, Health::Disabled);
    assert_eq!(
        fixture.accepted_connections(),
        0,
        "a toggled-off connector is not contacted"
    );
    registry.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_come_from_the_environment_and_never_show() {
    let guarded = Fixture::start(Knobs {
        require_authorization: Some("Bearer s3cret".into()),
        ..Knobs::default()
    })
    .await
    .unwrap();
    let mut map = service_map(&[("guarded", guarded.url())], 300);
    map["connectors"][0]["auth"] =
        serde_json::json!({"type": "bearer", "headerName": "Authorization"});
    let server = ManifestServer::start(map.to_string()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let sync = |token: Option<&'static str>| {
        let (dir, url) = (tmp.path().to_path_buf(), server.url());
        tokio::task::spawn_blocking(move || {
            let mut cmd = switchboard();
            cmd.env_remove("CONNECTORS_API_KEY")
                .env_remove("SWITCHBOARD_TOKEN_GUARDED");
            if let Some(token) = token {
                cmd.env("SWITCHBOARD_TOKEN_GUARDED", token);
            }
            cmd.arg("--config-dir").arg(&dir).args([
                "sync",
                "--once",
                "--json",
                "--manifest",
                &url,
            ]);
            cmd.output().unwrap()
        })
    };
    let without = sync(None).await.unwrap();
    let reports: serde_json::Value = serde_json::from_str(&stdout(&without)).unwrap();
    assert_eq!(reports[0]["state"], "unauthorized");
    assert!(
        reports[0]["error"]
            .as_str()
            .unwrap()
            .contains("SWITCHBOARD_TOKEN_GUARDED"),
        "{reports}"
    );
    assert_eq!(
        guarded.accepted_connections(),
        0,
        "no credential, no contact"
    );

    let with = sync(Some("s3cret")).await.unwrap();
    let reports: serde_json::Value = serde_json::from_str(&stdout(&with)).unwrap();
    assert_eq!(reports[0]["state"], "healthy", "{reports}");
    let everything = format!(
        "{}{}{}{}",
        stdout(&without),
        stderr(&without),
        stdout(&with),
        stderr(&with)
    );
    assert!(
        !everything.contains("s3cret"),
        "the token leaked into output"
    );
}

/// A service map as the replaced system's publisher writes it today: `displayName`,
/// `enabled: true|false`, `ttlSeconds`, static `headers`, `quotas`, `tags`, `description`,
/// `metadata.brand`.
#[tokio::test(flavor = "multi_thread")]
async fn the_current_publisher_shape_loads_disabled_is_never_contacted_and_headers_are_sent() {
    let guarded = Fixture::start(Knobs {
        require_authorization: Some("Bearer team-static".into()),
        ..Knobs::default()
    })
    .await
    .unwrap();
    let off = Fixture::start(Knobs::default()).await.unwrap();
    let map = serde_json::json!({
        "id": "01JSERVICEMAP", "brand": "acme", "generatedAt": "2026-11-25T00:00:00Z",
        "ttlSeconds": 300,
        "connectors": [
            {"id": "wiki", "version": "2", "displayName": "Team Wiki", "enabled": true,
             "ttlSeconds": 120, "endpoint": guarded.url(), "transport": "streamable-http",
             "headers": {"Authorization": "Bearer team-static"},
             "quotas": {"perMinute": 60, "perHour": 1000, "concurrent": 4},
             "tags": ["docs"], "description": "The team's wiki", "metadata": {"brand": "acme"}},
            {"id": "crm", "displayName": "CRM", "enabled": false, "endpoint": off.url(),
             "ttlSeconds": 120}
        ]
    });
    let manifest = switchboard::manifest::Manifest::parse(&map.to_string(), None).unwrap();
    let wiki = &manifest.connectors[0];
    assert_eq!(wiki.info.display_name.as_deref(), Some("Team Wiki"));
    assert_eq!(wiki.info.quotas.per_minute, Some(60));
    assert_eq!(wiki.info.quotas.concurrent, Some(4));
    assert_eq!(wiki.info.tags, ["docs"]);
    assert!(
        !manifest.connectors[1].enabled,
        "enabled: false is disabled"
    );

    let specs = desired_set(
        &manifest_specs(std::sync::Arc::new(manifest)).await,
        &RegistrySnapshot::default(),
    );
    let connected = one_shot(specs, &http_client().unwrap(), 16).await;
    let wiki = &connected.reports()[0];
    assert_eq!(
        wiki.state,
        Health::Healthy,
        "every request carried the static header (the server refuses any without): {wiki:?}"
    );
    assert_eq!(wiki.label(), "Team Wiki", "the UI shows the display name");
    assert_eq!(connected.reports()[1].state, Health::Disabled);
    assert_eq!(
        off.accepted_connections(),
        0,
        "a connector with enabled: false is never contacted"
    );
    connected.close().await;
    assert_eq!(
        off.accepted_connections(),
        0,
        "nor while the engine shut down"
    );

    // The two ways to say it may not disagree.
    let mut clash = map.clone();
    clash["connectors"][1]["status"] = "enabled".into();
    let refused = switchboard::manifest::Manifest::parse(&clash.to_string(), None)
        .expect_err("contradictory");
    assert!(
        refused
            .to_string()
            .contains("connectors[1] (id \"crm\"): enabled: false disagrees"),
        "{refused}"
    );
    let mut injected = map.clone();
    injected["connectors"][0]["headers"]["X-Evil"] = "a\r\nHost: elsewhere".into();
    let refused = switchboard::manifest::Manifest::parse(&injected.to_string(), None)
        .expect_err("a header value with a line break");
    assert!(refused.to_string().contains("headers:"), "{refused}");
}

/// Signs `document` with Node's own crypto, exactly as the replaced system's publisher does:
/// keys sorted with `localeCompare` at every level, `JSON.stringify`, HMAC-SHA256, base64url.
fn publisher_signature(document: &str, key: &str) -> String {
    use std::io::Write as _;
    const PUBLISHER: &str = r#"
const crypto = require('crypto');
let text = '';
process.stdin.on('data', (d) => { text += d; });
process.stdin.on('end', () => {
  const doc = JSON.parse(text);
  delete doc.signature;
  const sorted = (v) => Array.isArray(v) ? v.map(sorted)
    : v && typeof v === 'object'
      ? Object.keys(v).sort((a, b) => a.localeCompare(b)).reduce((o, k) => { o[k] = sorted(v[k]); return o; }, {})
      : v;
  process.stdout.write(crypto.createHmac('sha256', process.env.KEY).update(JSON.stringify(sorted(doc))).digest('base64url'));
});
"#;
    let mut node = std::process::Command::new("node")
        .args(["-e", PUBLISHER])
        .env("KEY", key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs (./scripts/install-deps.sh installs it)");
    node.stdin
        .take()
        .unwrap()
        .write_all(document.as_bytes())
        .unwrap();
    let out = node.wait_with_output().unwrap();
    assert!(out.status.success(), "node signed the document");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn maps_signed_by_the_publisher_verify_and_tampered_copies_do_not() {
    const KEY: &str = "publisher-key";
    // Keys that differ only in case, that byte order and collation sort apart (`accept` /
    // `X-Team`), non-ASCII ones, array-index keys, and numbers JavaScript writes its own way.
    let documents = [
        r#"{"id":"01JMAP","generatedAt":"2026-11-25T00:00:00Z","ttlSeconds":300,"connectors":[
            {"id":"wiki","displayName":"Wiki","enabled":true,"endpoint":"https://wiki.example/mcp",
             "headers":{"accept":"application/json","X-Team":"core","x-team2":"b"},
             "quotas":{"perMinute":60,"concurrent":4},
             "metadata":{"Brand":"a","brand":"b","BRAND":"c","équipe":"é","Équipe":"E","zèbre":1,
                         "10":"ten","9":"nine","ratio":0.1,"whole":1.0,"huge":1e21,"tiny":1.5e-7}}]}"#,
        r#"{"generatedAt":"2026-11-25T00:00:00Z","ttlSeconds":60,"connectors":[
            {"id":"crm","name":"CRM","status":"disabled","endpoint":"https://crm.example/mcp",
             "ttl":300,"metadata":{"b":[{"Z":1,"a":2}],"B":{"ä":1,"a":2,"z":3}}}],"brand":"Acme"}"#,
    ];
    for document in documents {
        let signature = publisher_signature(document, KEY);
        let mut signed: serde_json::Value = serde_json::from_str(document).unwrap();
        signed["signature"] = signature.clone().into();
        // Sent as the publisher would: its own text, the signature added last.
        let text = format!(
            "{},\"signature\":\"{signature}\"}}",
            document.trim_end().trim_end_matches('}')
        );
        switchboard::manifest::Manifest::parse(&text, Some(KEY.as_bytes()))
            .unwrap_or_else(|e| panic!("the publisher's signature verifies: {e}\n{document}"));
        // JCS form too (what `sign` makes), over the same document.
        let mut jcs = signed.clone();
        jcs["signature"] = sign(&signed, KEY.as_bytes()).into();
        switchboard::manifest::Manifest::parse(&jcs.to_string(), Some(KEY.as_bytes()))
            .expect("an RFC 8785 signature verifies");

        let tampered = text.replacen("example/mcp", "example/mcq", 1);
        let refused = switchboard::manifest::Manifest::parse(&tampered, Some(KEY.as_bytes()))
            .expect_err("a tampered copy");
        assert!(
            refused.to_string().contains("signature"),
            "tampered: {refused}"
        );
    }
}
