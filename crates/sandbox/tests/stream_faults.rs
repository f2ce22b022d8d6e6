//! Connection faults reach upgraded streaming connections: exec and
//! port-forward sessions are cut by drop-connections and idle-timeout, and
//! the exec'd process outlives its cut connection.

mod stream_support;

use std::time::Duration;

use podlink_sandbox::Fault;
use stream_support::{show, transport_name, Env, DEADLINE, TRANSPORTS};

async fn wait_listed(env: &Env, command: &[&str]) -> u32 {
    for _ in 0..600 {
        if let Some(p) = env
            .sandbox
            .processes()
            .into_iter()
            .find(|p| p.command == command)
        {
            return p.pid;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{command:?} never listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_connections_cuts_exec_but_not_the_process() {
    let env = Env::start().await;
    for ws in TRANSPORTS {
        let name = transport_name(ws);
        let marker = if ws { "311" } else { "312" };
        let mut kubectl = env.kubectl(ws);
        kubectl.args(["exec", "demo", "--", "sleep", marker]);
        let child = kubectl.spawn().expect("kubectl runs");
        wait_listed(&env, &["sleep", marker]).await;
        env.sandbox.inject(Fault::DropConnections).expect("fault");
        let out = tokio::time::timeout(DEADLINE, child.wait_with_output())
            .await
            .expect("kubectl ends once cut")
            .expect("kubectl output");
        // Over SPDY a dropped connection reads as end of stream and no
        // status, which kubectl counts as success ("fails open").
        assert!(!ws || !out.status.success(), "{name}: {}", show(&out));
        assert!(
            env.sandbox
                .processes()
                .iter()
                .any(|p| p.command == ["sleep", marker]),
            "{name}: the process went with its connection"
        );
    }
    env.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_cuts_a_silent_exec() {
    let env = Env::start().await;
    env.sandbox
        .inject(Fault::IdleTimeout { seconds: 1.0 })
        .expect("fault");
    for ws in TRANSPORTS {
        let name = transport_name(ws);
        // kubectl pings every 5 s, so a 1 s idle limit cuts a silent
        // `sleep 313` long before it ends by itself.
        let mut kubectl = env.kubectl(ws);
        kubectl.args(["exec", "demo", "--", "sleep", "313"]);
        let child = kubectl.spawn().expect("kubectl runs");
        let out = tokio::time::timeout(DEADLINE, child.wait_with_output())
            .await
            .expect("kubectl ends once cut")
            .expect("kubectl output");
        assert!(!ws || !out.status.success(), "{name}: {}", show(&out));
    }
    env.sandbox.shutdown().await;
}
