//! A watcher with a store in a process of its own, so that its peak RSS is
//! its own: prints `synced N` once the initial list is in the store and
//! `deleted N` once N deletions were handled, then keeps watching until
//! the harness kills it.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use podlink_client::watch::Compact;

use crate::args::Library;

/// Longest the helper lives if the harness never kills it.
const LIFETIME: Duration = Duration::from_secs(3600);

/// Watches `namespace` with `library` (podlink: `typed` keeps `Pod` values).
pub async fn run(
    library: Library,
    namespace: &str,
    expect_deletes: u64,
    typed: bool,
) -> Result<()> {
    let watching = async {
        match (library, typed) {
            (Library::KubeRs, _) => kube_rs(namespace, expect_deletes).await,
            (Library::Podlink, false) => podlink::<Compact<Pod>>(namespace, expect_deletes).await,
            (Library::Podlink, true) => podlink::<Pod>(namespace, expect_deletes).await,
        }
    };
    match tokio::time::timeout(LIFETIME, watching).await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}

async fn kube_rs(namespace: &str, expect_deletes: u64) -> Result<()> {
    let client = kube::Client::try_default().await?;
    let api: kube::Api<Pod> = kube::Api::namespaced(client, namespace);
    let (store, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    futures::pin_mut!(stream);
    let mut deletes = 0u64;
    while let Some(event) = stream.try_next().await? {
        match event {
            watcher::Event::InitDone => println!("synced {}", store.state().len()),
            watcher::Event::Delete(_) => {
                deletes += 1;
                if deletes == expect_deletes {
                    println!("deleted {deletes}");
                }
            }
            _ => {}
        }
    }
    Err(anyhow!("kube-rs watcher stream ended"))
}

/// The podlink informer keeping `K`: `Compact<Pod>` (each pod as the JSON
/// the server sent, decoded on read) or, with `--typed`, `Pod`.
async fn podlink<K>(namespace: &str, expect_deletes: u64) -> Result<()>
where
    K: kube::Resource<DynamicType = ()>
        + k8s_openapi::serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    use podlink_client::watch::{ApiSource, InformerBuilder, WatchConfig};

    let client = podlink_client::Client::try_default()
        .await
        .context("podlink client from $KUBECONFIG")?;
    let source = ApiSource::<K>::namespaced(client.kube().clone(), namespace);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut deletes = 0u64;
    let informer = InformerBuilder::new(WatchConfig::default())
        .on_delete(move |_: &std::sync::Arc<K>| {
            deletes += 1;
            if deletes == expect_deletes {
                let _ = done_tx.send(deletes);
            }
        })
        .start(source);
    informer.store().synced().await;
    println!("synced {}", informer.store().len());
    let deleted = done_rx
        .recv()
        .await
        .ok_or_else(|| anyhow!("informer ended"))?;
    println!("deleted {deleted}");
    tokio::time::sleep(LIFETIME).await;
    informer.stop().await;
    Ok(())
}
