//! Watch against servers that misbehave on purpose (issue #11): garbage and
//! a never-ending event must end the stream with a decode error, within a
//! bound, with the buffered event capped by the decoder's limit.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use podlink_client::watch::{ApiSource, Source, WatchRequest};
use podlink_client::{Client, ClientOptions, Error};
use podlink_proto::watch::DEFAULT_MAX_EVENT_SIZE;
use podlink_proto::DecodeError;
use podlink_testkit::hostile::{HostileServer, Scenario, GIGANTIC_EVENT};

/// Bounds every wait; a stream still silent after this is a hang.
const DEADLINE: Duration = Duration::from_secs(60);

/// Opens a watch of pods in `default` on a server playing `scenario` and
/// returns the first thing the stream yields.
async fn first_item(scenario: Scenario) -> Error {
    let server = HostileServer::start(scenario)
        .await
        .expect("hostile server");
    let client = Client::from_options(&ClientOptions::new().kubeconfig(server.kubeconfig()))
        .await
        .expect("client for the hostile server");
    let source = ApiSource::<Pod>::namespaced(client.kube().clone(), "default");
    let first = tokio::time::timeout(DEADLINE, async {
        let mut events = source.watch(WatchRequest::default()).await?;
        events.next().await.expect("the stream ended silently")
    })
    .await
    .unwrap_or_else(|_| panic!("{scenario:?}: nothing within {DEADLINE:?}"));
    first.expect_err("garbage must not decode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_line_is_a_decode_error() {
    let err = first_item(Scenario::WatchGarbage).await;
    assert!(
        matches!(err, Error::WatchDecode(_) | Error::DecodeObject { .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_ending_event_hits_the_decoder_limit() {
    const { assert!(GIGANTIC_EVENT > DEFAULT_MAX_EVENT_SIZE) };
    let err = first_item(Scenario::WatchGigantic).await;
    assert!(
        matches!(&err, Error::WatchDecode(DecodeError::ValueTooLarge { .. })),
        "{err:?}"
    );
}
