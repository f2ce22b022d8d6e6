//! `podlink cp` end to end against a test sandbox: both directions, with
//! real kubectl as the oracle (kubectl reads back what podlink wrote and
//! writes what podlink reads), and the one-line errors with exit status 255.

mod cp_support;

use std::fs;
use std::path::Path;

use podlink_testkit::TestSandbox;

use cp_support::{podlink, PATIENCE};

fn write_tree(root: &Path) {
    fs::create_dir_all(root.join("sub")).unwrap();
    for i in 0..40u32 {
        let data: Vec<u8> = (0..(i * 97)).map(|b| (b % 251) as u8 ^ i as u8).collect();
        fs::write(
            root.join(if i % 2 == 0 { "sub" } else { "." })
                .join(format!("f{i}")),
            data,
        )
        .unwrap();
    }
}

fn same_files(a: &Path, b: &Path) {
    let names = |root: &Path| {
        let mut out = Vec::new();
        let mut todo = vec![root.to_path_buf()];
        while let Some(dir) = todo.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    todo.push(path);
                } else {
                    out.push((
                        path.strip_prefix(root).unwrap().to_path_buf(),
                        fs::read(&path).unwrap(),
                    ));
                }
            }
        }
        out.sort();
        out
    };
    assert_eq!(
        names(a),
        names(b),
        "{} and {} differ",
        a.display(),
        b.display()
    );
}

#[test]
fn copies_both_ways_and_kubectl_agrees() {
    let sandbox = TestSandbox::start();
    let temp = tempfile::tempdir().unwrap();
    let base = temp.path();
    let source = base.join("source");
    write_tree(&source);
    let remote = base.join("in-pod");

    // podlink up, kubectl down.
    let up = podlink(
        &sandbox,
        &[
            "cp",
            source.to_str().unwrap(),
            &format!("demo:{}", remote.display()),
        ],
    );
    assert_eq!(up.code, Some(0), "{up}");
    assert!(up.stderr.contains("verified: sha256"), "{up}");
    let by_kubectl = base.join("by-kubectl");
    sandbox
        .kubectl()
        .args([
            "cp",
            &format!("demo:{}", remote.display()),
            by_kubectl.to_str().unwrap(),
        ])
        .run()
        .success();
    same_files(&source, &by_kubectl);

    // kubectl up, podlink down.
    let remote2 = base.join("in-pod-2");
    sandbox
        .kubectl()
        .args([
            "cp",
            source.to_str().unwrap(),
            &format!("demo:{}", remote2.display()),
        ])
        .run()
        .success();
    let back = base.join("back");
    let down = podlink(
        &sandbox,
        &[
            "cp",
            &format!("default/demo:{}", remote2.display()),
            back.to_str().unwrap(),
        ],
    );
    assert_eq!(down.code, Some(0), "{down}");
    assert!(
        down.stderr.contains("copied 40 files, 2 directories"),
        "{down}"
    );
    same_files(&source, &back);

    // A single file into an existing local directory keeps its name.
    let single = podlink(
        &sandbox,
        &[
            "cp",
            "-c",
            "main",
            &format!("demo:{}/f1", remote.display()),
            base.to_str().unwrap(),
        ],
    );
    assert_eq!(single.code, Some(0), "{single}");
    assert_eq!(
        fs::read(base.join("f1")).unwrap(),
        fs::read(source.join("f1")).unwrap()
    );
}

#[test]
fn errors_are_one_line_with_status_255() {
    let sandbox = TestSandbox::start();
    let temp = tempfile::tempdir().unwrap();
    let local = temp.path().join("x");
    fs::write(&local, "x").unwrap();
    let local = local.to_str().unwrap();
    let nowhere = temp.path().join("missing/y");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["cp", "nope:/tmp/x", local],
            "pod \"nope\" not found in namespace \"default\"",
        ),
        (
            vec!["cp", local, local],
            "exactly one of source and destination must be POD:PATH",
        ),
        (vec!["cp", "Bad_Pod:/x", local], "is not a valid name"),
        (
            vec!["cp", "demo:/definitely/not/here", local],
            "/definitely/not/here: no such file or directory in pod demo",
        ),
        (
            vec!["cp", "-c", "nope", local, "demo:/tmp"],
            "pod \"demo\" has no container \"nope\"; its containers: main",
        ),
        (
            vec!["cp", local, "demo:/definitely/not/here/y"],
            "the directory to copy into does not exist",
        ),
        (
            vec!["cp", "demo:/etc/hostname", nowhere.to_str().unwrap()],
            "the directory to copy into does not exist",
        ),
    ];
    for (args, expected) in cases {
        let out = podlink(&sandbox, &args);
        assert_eq!(out.code, Some(255), "{args:?}\n{out}");
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("podlink: "))
            .collect();
        assert_eq!(lines.len(), 1, "{args:?}: one podlink line\n{out}");
        assert!(
            lines[0].contains(expected),
            "{args:?}: expected {expected:?}\n{out}"
        );
    }
}

#[test]
fn several_containers_need_dash_c() {
    let sandbox = TestSandbox::start();
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"two"},
        "spec":{"containers":[{"name":"app","image":"x","command":["sleep","3600"]},
                              {"name":"side","image":"x","command":["sleep","3600"]}]}}"#;
    sandbox
        .kubectl()
        .args(["apply", "--validate=false", "-f", "-"])
        .stdin(pod)
        .run()
        .success();
    podlink_testkit::wait_until(PATIENCE, "pod two to run", || {
        let out = sandbox
            .kubectl()
            .args(["get", "pod", "two", "-o", "jsonpath={.status.phase}"])
            .run();
        (out.stdout == "Running").then_some(())
    });
    let out = podlink(
        &sandbox,
        &[
            "cp",
            "two:/etc/hostname",
            "/tmp/never-written-by-podlink-test",
        ],
    );
    assert_eq!(out.code, Some(255), "{out}");
    assert!(
        out.stderr
            .contains("pod \"two\" has several containers; choose one with -c: app, side"),
        "{out}"
    );
}

#[test]
fn cluster_problems_name_cause_and_fix() {
    let sandbox = TestSandbox::start();
    let temp = tempfile::tempdir().unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(sandbox.kubeconfig()).unwrap()).unwrap();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut bad_token = config.clone();
    bad_token["users"][0]["user"]["token"] = "not-the-token".into();
    let mut nowhere = config;
    nowhere["clusters"][0]["cluster"]["server"] = format!("https://127.0.0.1:{closed_port}").into();
    let cases = [
        (
            bad_token,
            "likely cause: the cluster rejected the credentials".to_owned(),
        ),
        (
            nowhere,
            format!("likely cause: nothing listens at https://127.0.0.1:{closed_port}"),
        ),
    ];
    for (index, (kubeconfig, expected)) in cases.into_iter().enumerate() {
        let path = temp.path().join(format!("kubeconfig-{index}"));
        fs::write(&path, serde_json::to_vec(&kubeconfig).unwrap()).unwrap();
        let out = cp_support::podlink_with(&path, &["cp", "demo:/etc/hostname", "unused"]);
        assert_eq!(out.code, Some(255), "{out}");
        let line = out
            .stderr
            .lines()
            .find(|l| l.starts_with("podlink: "))
            .unwrap_or_else(|| panic!("no podlink line\n{out}"));
        assert!(line.contains(&expected), "expected {expected:?}\n{out}");
        assert!(line.contains("fix: "), "{out}");
    }
}

#[test]
fn interrupted_download_leaves_nothing_behind() {
    let sandbox = TestSandbox::start();
    let temp = tempfile::tempdir().unwrap();
    // Big enough to be mid-stream when interrupted (sparse: no disk used).
    let big = temp.path().join("big.img");
    fs::File::create(&big).unwrap().set_len(64 << 30).unwrap();
    let dest = temp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let running = cp_support::start_with(
        sandbox.kubeconfig(),
        &[
            "cp",
            &format!("demo:{}", big.display()),
            dest.to_str().unwrap(),
        ],
    );
    let staging = || {
        fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with(".podlink-cp-"))
    };
    podlink_testkit::wait_until(PATIENCE, "the copy to start", || {
        dest.join(staging()?).join("item").exists().then_some(())
    });
    let killed = std::process::Command::new("kill")
        .args(["-INT", &running.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = running.wait();
    assert_eq!(out.code, Some(130), "{out}");
    assert!(out.stderr.contains("nothing was written locally"), "{out}");
    assert_eq!(staging(), None, "staging directory left behind\n{out}");
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 0, "{out}");
    podlink_testkit::wait_until(PATIENCE, "the remote tar to end", || {
        let left: Vec<_> = sandbox
            .processes()
            .into_iter()
            .filter(|p| p.kind == podlink_sandbox::ProcessKind::Exec)
            .collect();
        left.is_empty().then_some(())
    });
}

#[test]
fn interrupted_upload_stops_the_remote_side() {
    let sandbox = TestSandbox::start();
    let temp = tempfile::tempdir().unwrap();
    let big = temp.path().join("big.img");
    fs::File::create(&big).unwrap().set_len(64 << 30).unwrap();
    let remote_parent = temp.path().join("in-pod");
    fs::create_dir(&remote_parent).unwrap();
    let remote = remote_parent.join("copy.img");
    let running = cp_support::start_with(
        sandbox.kubeconfig(),
        &[
            "cp",
            big.to_str().unwrap(),
            &format!("demo:{}", remote.display()),
        ],
    );
    // The pod side unpacks into a temporary directory beside the target.
    podlink_testkit::wait_until(PATIENCE, "the upload to start", || {
        fs::read_dir(&remote_parent)
            .unwrap()
            .any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".podlink-cp.")
            })
            .then_some(())
    });
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &running.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = running.wait();
    assert_eq!(out.code, Some(143), "{out}");
    assert!(
        out.stderr
            .contains("the destination in the pod is unchanged"),
        "{out}"
    );
    assert!(
        !remote.exists(),
        "a truncated copy was moved into place\n{out}"
    );
    podlink_testkit::wait_until(PATIENCE, "the remote tar to end", || {
        let left: Vec<_> = sandbox
            .processes()
            .into_iter()
            .filter(|p| p.kind == podlink_sandbox::ProcessKind::Exec)
            .collect();
        left.is_empty().then_some(())
    });
}
