//! The registry's async API: durability, group commit, debounce, two handles on one dir.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use std::sync::Arc;

use switchboard::registry::{
    FlushObserver, Registry, RegistryError, RegistryLock, RegistryOptions,
};

use crate::support::*;

#[tokio::test]
async fn acknowledged_edits_survive_reopen_in_private_files() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path()).await;
    registry.add(name("wiki"), remote(9001)).await.unwrap();
    registry.add(name("docs"), remote(9002)).await.unwrap();
    registry.set_enabled(name("wiki"), false).await.unwrap();
    registry
        .set_override("manifest-crm", Some(false))
        .await
        .unwrap();
    let snapshot = registry.snapshot();
    assert!(
        !snapshot.servers[&name("wiki")].enabled,
        "readers must see an edit as soon as it is acknowledged"
    );
    registry.close().await.unwrap();

    let reopened = open(dir.path()).await;
    let snapshot = reopened.snapshot();
    assert_eq!(
        snapshot
            .servers
            .keys()
            .map(|n| n.as_str())
            .collect::<Vec<_>>(),
        ["wiki", "docs"],
        "both servers, in insertion order"
    );
    assert!(!snapshot.servers[&name("wiki")].enabled);
    assert_eq!(snapshot.overrides["manifest-crm"].enabled, Some(false));
    #[cfg(unix)]
    for file in ["servers.json", "servers.journal", "servers.lock"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{file} may hold secrets and must be 0600"
        );
    }
}

#[tokio::test]
async fn rejected_edits_say_why_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path()).await;
    registry.add(name("a"), remote(1)).await.unwrap();
    let taken = registry.add(name("a"), remote(2)).await.unwrap_err();
    assert_eq!(taken.code(), "already_exists", "{taken}");
    let missing = registry.remove(name("nope")).await.unwrap_err();
    assert!(missing.to_string().contains("nope"), "{missing}");
    let seq = registry.snapshot().seq;
    let half = registry
        .apply(vec![
            switchboard::registry::Edit::Add {
                name: name("b"),
                entry: remote(3),
            },
            switchboard::registry::Edit::Remove {
                name: name("ghost"),
            },
        ])
        .await;
    assert!(half.is_err(), "a batch with a bad edit must fail");
    let snapshot = registry.snapshot();
    assert_eq!(snapshot.seq, seq, "a failed batch must not be journaled");
    assert!(
        !snapshot.servers.contains_key(&name("b")),
        "a failed batch is all or nothing"
    );
    registry.close().await.unwrap();
}

/// Polls a future once, so its request is queued, and hands it back to be awaited later.
async fn queued<F: Future>(mut future: Pin<Box<F>>) -> Pin<Box<F>> {
    std::future::poll_fn(|cx| {
        let _ = future.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
    future
}

#[tokio::test]
async fn concurrent_edits_share_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path()).await;
    // Hold the writers' lock so the writer stalls on the first group while the rest queue.
    let held = RegistryLock::acquire(&dir.path().join("servers.lock"), DEADLINE).unwrap();
    let mut pending = Vec::new();
    for i in 0..20 {
        let registry = registry.clone();
        pending.push(
            queued(Box::pin(async move {
                registry.add(name(&format!("s{i}")), remote(i)).await
            }))
            .await,
        );
    }
    drop(held);
    for edit in pending {
        edit.await.expect("every queued edit is acknowledged");
    }
    let stats = registry.stats();
    assert!(
        stats.journal_fsyncs <= 2,
        "20 queued edits should take the first group's fsync plus one shared fsync, took {}",
        stats.journal_fsyncs
    );
    assert_eq!(registry.snapshot().servers.len(), 20);
    registry.close().await.unwrap();
}

#[tokio::test]
async fn a_burst_of_edits_is_one_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let flushes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let observed = flushes.clone();
    let registry = Registry::open(RegistryOptions {
        quiet: Duration::from_millis(300),
        max_delay: Duration::from_secs(60),
        on_flush: Some(FlushObserver(Arc::new(move |_took| {
            observed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }))),
        ..RegistryOptions::in_dir(dir.path())
    })
    .await
    .unwrap();
    let burst: Vec<_> = (0..40u16)
        .map(|i| {
            let registry = registry.clone();
            tokio::spawn(async move { registry.add(name(&format!("s{i}")), remote(i)).await })
        })
        .collect();
    for edit in burst {
        edit.await.unwrap().unwrap();
    }
    assert_eq!(
        registry.stats().file_rewrites,
        0,
        "no rewrite before the burst goes quiet"
    );
    // The observer hears of the rewrite just after its counter moves: wait for both.
    wait_until("the debounced rewrite happens and is observed", || {
        registry.stats().file_rewrites >= 1
            && flushes.load(std::sync::atomic::Ordering::SeqCst) >= 1
    })
    .await;
    let text = std::fs::read_to_string(servers_json(dir.path())).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        file["mcpServers"].as_object().unwrap().len(),
        40,
        "one rewrite holds the burst"
    );
    assert_eq!(registry.stats().file_rewrites, 1, "one rewrite per burst");
    assert_eq!(
        flushes.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the flush observer hears of it"
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("servers.journal"))
            .unwrap()
            .len(),
        0,
        "the journal is emptied by the rewrite"
    );
    registry.close().await.unwrap();
}

#[tokio::test]
async fn the_rewrite_comes_by_max_delay_even_if_edits_never_pause() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(RegistryOptions {
        quiet: Duration::from_secs(60),
        max_delay: Duration::from_millis(200),
        ..RegistryOptions::in_dir(dir.path())
    })
    .await
    .unwrap();
    registry.add(name("a"), remote(1)).await.unwrap();
    wait_until(
        "max_delay forces a rewrite despite the long quiet period",
        || registry.stats().file_rewrites == 1,
    )
    .await;
    registry.close().await.unwrap();
}

#[tokio::test]
async fn two_registries_on_one_dir_see_each_others_journaled_edits() {
    let dir = tempfile::tempdir().unwrap();
    let slow = |dir| RegistryOptions {
        quiet: Duration::from_secs(60),
        max_delay: Duration::from_secs(60),
        watch: false,
        ..RegistryOptions::in_dir(dir)
    };
    let first = Registry::open(slow(dir.path())).await.unwrap();
    first.add(name("x"), remote(1)).await.unwrap();
    assert!(
        !servers_json(dir.path()).exists(),
        "still only in the journal"
    );

    let second = Registry::open(slow(dir.path())).await.unwrap();
    assert!(
        second.snapshot().servers.contains_key(&name("x")),
        "open replays the journal"
    );
    second.add(name("y"), remote(2)).await.unwrap();
    first.add(name("z"), remote(3)).await.unwrap();
    let seen: Vec<String> = first
        .snapshot()
        .servers
        .keys()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        seen,
        ["x", "y", "z"],
        "a writer catches up with the other before appending"
    );

    second.close().await.unwrap();
    first.close().await.unwrap();
    let last = open(dir.path()).await;
    assert_eq!(last.snapshot().servers.len(), 3);
    let err = last.add(name("y"), remote(4)).await.unwrap_err();
    assert!(matches!(err, RegistryError::Rejected(_)), "{err}");
    last.close().await.unwrap();
}
