//! Exec against the sandbox over every protocol: exit statuses, separate
//! and exact output, stdin end-of-file, a 50 MB round trip, a terminal with
//! resize, and 1,000 sequential execs.

mod exec_support;

use exec_support::{client, code, run, DEADLINE, PROTOCOLS};
use podlink_client::exec::{ExecRequest, ExitStatus, TerminalSize};
use podlink_testkit::TestSandbox;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_statuses_pass_through_exactly() {
    let sandbox = TestSandbox::start();
    let client = client(&sandbox).await;
    for protocol in PROTOCOLS {
        for expected in [0_u32, 1, 7, 255] {
            let script = format!("exit {expected}");
            let out = run(&client, protocol, &["sh", "-c", &script]).await;
            assert_eq!(code(&out.status), expected, "{protocol:?}: {out:?}");
        }
        // Death by signal: the shell reports 128 + 9.
        let out = run(&client, protocol, &["sh", "-c", "kill -9 $$"]).await;
        assert_eq!(code(&out.status), 137, "{protocol:?}: {out:?}");
        println!("{protocol:?}: exit 0, 1, 7, 255 and SIGKILL (137) passed through");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_and_stderr_are_separate_and_exact() {
    let sandbox = TestSandbox::start();
    let client = client(&sandbox).await;
    let script = "printf 'out\\000one\\n'; printf 'err two' >&2; printf 'out three'; exit 3";
    for protocol in PROTOCOLS {
        let out = run(&client, protocol, &["sh", "-c", script]).await;
        assert_eq!(out.stdout, b"out\0one\nout three", "{protocol:?}");
        assert_eq!(out.stderr, b"err two", "{protocol:?}");
        assert_eq!(out.status, ExitStatus::Exited { code: 3 });
    }
}

/// stdin → cat → stdout, byte-exact, and stdin's end-of-file ends cat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_megabytes_through_cat_byte_exact() {
    const SIZE: usize = 50 * 1024 * 1024;
    let sandbox = TestSandbox::start();
    let client = client(&sandbox).await;
    // Deterministic but incompressible-looking data.
    let data: Vec<u8> = (0..SIZE as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let want = Sha256::digest(&data);
    for protocol in PROTOCOLS {
        let request = ExecRequest::new("demo", ["cat"])
            .with_stdin(true)
            .with_protocol(protocol);
        let mut exec = client.exec(request).await.expect("start cat");
        let mut stdin = exec.stdin().expect("stdin");
        let mut stdout = exec.stdout().expect("stdout");
        let input = data.clone();
        let writer = tokio::spawn(async move {
            stdin.write_all(&input).await?;
            stdin.shutdown().await
        });
        let reader = tokio::spawn(async move {
            let mut hasher = Sha256::new();
            let mut total = 0_usize;
            let mut buf = vec![0_u8; 64 * 1024];
            loop {
                let n = stdout.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>((total, hasher.finalize()));
                }
                total += n;
                hasher.update(&buf[..n]);
            }
        });
        let status = tokio::time::timeout(DEADLINE, exec.wait())
            .await
            .expect("cat ends")
            .expect("status");
        writer.await.expect("writer task").expect("stdin written");
        let (total, got) = reader.await.expect("reader task").expect("stdout read");
        assert_eq!(status, ExitStatus::Success, "{protocol:?}");
        assert_eq!(total, SIZE, "{protocol:?}");
        assert_eq!(got, want, "{protocol:?}: content differs");
        println!("{protocol:?} ({}): 50 MiB byte-exact", exec.protocol());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_gets_its_size_and_resizes() {
    let sandbox = TestSandbox::start();
    let client = client(&sandbox).await;
    for protocol in PROTOCOLS {
        // The shell waits for a line on the terminal, then reports the size.
        let request = ExecRequest::new("demo", ["sh", "-c", "stty size; read line; stty size"])
            .with_stdin(true)
            .with_tty(true)
            .with_protocol(protocol);
        let mut exec = client.exec(request).await.expect("start tty session");
        let resizer = exec.resizer().expect("a tty session has a resizer");
        assert!(
            exec.stderr().is_none(),
            "a terminal merges stderr into stdout"
        );
        let mut stdin = exec.stdin().expect("stdin");
        let mut stdout = exec.stdout().expect("stdout");
        resizer.resize(TerminalSize {
            width: 101,
            height: 37,
        });
        let mut seen = String::new();
        let mut buf = [0_u8; 1024];
        // Wait for the first size (the resize may land before or after the
        // shell starts; keep nudging until the terminal reports it).
        let first = tokio::time::timeout(DEADLINE, async {
            loop {
                let n = stdout.read(&mut buf).await.expect("read tty");
                assert!(n > 0, "tty closed early: {seen:?}");
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                if seen.contains('\n') {
                    return seen.clone();
                }
            }
        })
        .await
        .expect("first size line");
        resizer.resize(TerminalSize {
            width: 120,
            height: 40,
        });
        // Give the resize a moment to travel before the shell reads the size.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        stdin.write_all(b"go\r").await.expect("write line");
        let mut rest = String::new();
        tokio::time::timeout(DEADLINE, stdout.read_to_string(&mut rest))
            .await
            .expect("rest")
            .expect("read");
        let status = exec.wait().await.expect("status");
        assert_eq!(status, ExitStatus::Success, "{protocol:?}: {first}{rest}");
        assert!(
            first.contains("37 101") || first.contains("40 120") || first.contains("24 80"),
            "{protocol:?}: first size {first:?}"
        );
        assert!(
            rest.contains("40 120"),
            "{protocol:?}: after resize {rest:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sequential_execs_all_right() {
    let sandbox = TestSandbox::start();
    let client = client(&sandbox).await;
    let started = std::time::Instant::now();
    for i in 0..1000_u32 {
        let expected = i % 4;
        let script = format!("exit {expected}");
        let out = run(&client, PROTOCOLS[(i % 2) as usize], &["sh", "-c", &script]).await;
        assert_eq!(code(&out.status), expected, "round {i}: {out:?}");
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "round {i}: {out:?}"
        );
    }
    println!(
        "1000 execs (alternating WebSocket/SPDY) in {:?}",
        started.elapsed()
    );
}
