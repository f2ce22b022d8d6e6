//! Failures are typed by the step that failed: an upgrade refusal carries
//! the server's Status (and is the only error that allows falling back to
//! SPDY), a dead address is a connect error.

mod exec_support;

use exec_support::{client, PROTOCOLS};
use podlink_client::exec::{ExecRequest, ProtocolChoice};
use podlink_client::{Client, ClientOptions, Error};
use podlink_testkit::TestSandbox;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_pod_is_a_refusal_with_the_servers_status() {
    let sandbox = TestSandbox::start();
    let client = client(&sandbox).await;
    for protocol in PROTOCOLS.into_iter().chain([ProtocolChoice::Auto]) {
        let err = client
            .exec(ExecRequest::new("no-such-pod", ["true"]).with_protocol(protocol))
            .await
            .expect_err("no such pod");
        assert!(err.is_upgrade_refusal(), "{protocol:?}: {err:?}");
        let status = err
            .status()
            .unwrap_or_else(|| panic!("{protocol:?}: no Status in {err:?}"));
        assert_eq!(status.code, 404, "{protocol:?}: {status:?}");
        assert!(
            err.to_string().contains("no-such-pod"),
            "{protocol:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_address_is_a_connect_error_not_a_refusal() {
    let sandbox = TestSandbox::start();
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(sandbox.kubeconfig()).expect("read kubeconfig"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kube config");
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    config.cluster_url = format!("https://127.0.0.1:{port}").parse().expect("url");
    let client = Client::from_config(config).expect("client");
    let err = client
        .exec(ExecRequest::new("demo", ["true"]))
        .await
        .expect_err("nobody listens");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(!err.is_upgrade_refusal());
    // Options pointing at a missing kubeconfig fail while loading it.
    let err = Client::from_options(&ClientOptions::new().kubeconfig("/nonexistent/kubeconfig"))
        .await
        .expect_err("missing file");
    assert!(matches!(err, Error::Kubeconfig(_)), "{err:?}");
}
