//! kubectl exec against the sandbox, over WebSocket (v5) and SPDY.

mod stream_support;

use stream_support::{show, transport_name, Env, TRANSPORTS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_exit_codes_and_separate_stderr() {
    let env = Env::start().await;
    for ws in TRANSPORTS {
        let name = transport_name(ws);
        let out = env
            .run(ws, &["exec", "demo", "--", "echo", "hi"], None)
            .await;
        assert!(out.status.success(), "{name}: {}", show(&out));
        assert_eq!(out.stdout, b"hi\n", "{name}: {}", show(&out));

        let out = env
            .run(ws, &["exec", "demo", "--", "sh", "-c", "exit 7"], None)
            .await;
        assert_eq!(out.status.code(), Some(7), "{name}: {}", show(&out));

        let out = env
            .run(
                ws,
                &[
                    "exec",
                    "demo",
                    "--",
                    "sh",
                    "-c",
                    "echo out; echo err >&2; exit 3",
                ],
                None,
            )
            .await;
        assert_eq!(out.status.code(), Some(3), "{name}: {}", show(&out));
        assert_eq!(out.stdout, b"out\n", "{name}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("err\n"), "{name}: {}", show(&out));
        assert!(
            stderr.contains("command terminated with exit code 3"),
            "{name}: {}",
            show(&out)
        );

        // A signal is reported as 128 + signal, as containerd does.
        let out = env
            .run(
                ws,
                &["exec", "demo", "--", "sh", "-c", "kill -KILL $$"],
                None,
            )
            .await;
        assert_eq!(out.status.code(), Some(137), "{name}: {}", show(&out));
    }
    env.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_20_mib_arrives_byte_exact() {
    let env = Env::start().await;
    let mut data = vec![0u8; 20 << 20];
    rand::fill(&mut data[..]);
    for ws in TRANSPORTS {
        let name = transport_name(ws);
        let out = env
            .run(ws, &["exec", "-i", "demo", "--", "cat"], Some(&data))
            .await;
        assert!(
            out.status.success(),
            "{name}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout.len(), data.len(), "{name}: length");
        assert!(out.stdout == data, "{name}: bytes differ");
    }
    env.sandbox.shutdown().await;
}

/// Runs kubectl under a pseudo-terminal of 33x101 (set before kubectl
/// starts), waits for the remote `stty size` to report it, then resizes to
/// 40x120 and pokes the shell until it reports the new size.
const TTY_DRIVER: &str = r#"
import fcntl, os, pty, select, struct, sys, termios, time
def winsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
pid, fd = pty.fork()
if pid == 0:
    winsize(0, 33, 101)
    os.execvp("kubectl", ["kubectl", "exec", "-it", "demo", "--", "sh", "-c",
        "stty size; while read x; do [ \"$x\" = q ] && exit 3; stty size; done"])
seen = b""
def read_until(marker, poke=None):
    global seen
    for _ in range(600):
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return False
            if not chunk:
                return False
            seen += chunk
            if marker in seen:
                return True
        elif poke is not None:
            os.write(fd, poke)
    return False
ok1 = read_until(b"33 101")
winsize(fd, 40, 120)
ok2 = ok1 and read_until(b"40 120", poke=b"\r")
os.write(fd, b"q\r")
read_until(b"\0never\0")
_, status = os.waitpid(pid, 0)
sys.stdout.write("first=%s second=%s exit=%d\n" % (ok1, ok2, os.waitstatus_to_exitcode(status)))
sys.stdout.write(seen.decode("utf-8", "replace"))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tty_exec_sees_window_size_and_resize() {
    let env = Env::start().await;
    for ws in TRANSPORTS {
        let name = transport_name(ws);
        let mut command = env.command("python3", ws);
        command.args(["-c", TTY_DRIVER]);
        let out = tokio::time::timeout(stream_support::DEADLINE, command.output())
            .await
            .expect("tty driver finishes")
            .expect("python3 runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("first=True second=True exit=3\n"),
            "{name}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    env.sandbox.shutdown().await;
}

fn is_alive(pid: u32) -> bool {
    // A zombie counts as gone: it has ended and only waits to be reaped.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_survives_killed_client_until_shutdown() {
    let env = Env::start().await;
    let mut pids = Vec::new();
    for ws in TRANSPORTS {
        let name = transport_name(ws);
        let marker = if ws { "301" } else { "302" };
        let mut kubectl = env.kubectl(ws);
        kubectl.args(["exec", "demo", "--", "sleep", marker]);
        let mut child = kubectl.spawn().expect("kubectl runs");
        let listed = |env: &Env| {
            env.sandbox
                .processes()
                .into_iter()
                .find(|p| p.command == ["sleep", marker])
        };
        let mut found = None;
        for _ in 0..600 {
            found = listed(&env);
            if found.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let info = found.unwrap_or_else(|| panic!("{name}: exec'd sleep never listed"));
        child.kill().await.expect("kill kubectl");
        // The client is gone; like on a node, the process is not.
        assert!(
            listed(&env).is_some(),
            "{name}: sleep vanished with its client"
        );
        assert!(is_alive(info.pid), "{name}: sleep died with its client");
        pids.push(info.pid);
    }
    env.sandbox.shutdown().await;
    for pid in pids {
        let mut gone = false;
        for _ in 0..600 {
            if !is_alive(pid) {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(gone, "pid {pid} outlived the sandbox");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_reaches_the_main_process() {
    let env = Env::start().await;
    for ws in TRANSPORTS {
        let name = transport_name(ws);
        let pod = format!("echo-{name}");
        env.create_pod(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "main",
                    "image": "busybox",
                    "stdin": true,
                    "command": ["sh", "-c", "read line; echo got:$line; echo bye >&2"],
                }],
            },
        }))
        .await;
        let out = env.run(ws, &["attach", "-i", &pod], Some(b"hello\n")).await;
        assert!(out.status.success(), "{name}: {}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("got:hello"),
            "{name}: {}",
            show(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("bye"),
            "{name}: {}",
            show(&out)
        );
    }
    env.sandbox.shutdown().await;
}
