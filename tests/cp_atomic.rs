//! `podlink cp` into a pod never leaves a partial file in place: the pod
//! side unpacks into a temporary directory beside the target and moves the
//! copy into place only once its checksum matches the client's. A cut
//! connection or a killed client leaves the old content and no temporary.
//! (Pods are host processes, so the "pod" paths are checked directly.)

mod cp_support;

use std::fs;
use std::path::Path;

use podlink_sandbox::{Fault, ProcessKind};
use podlink_testkit::{wait_until, TestSandbox};

use cp_support::{podlink, start_with, PATIENCE};

const OLD: &[u8] = b"the old content must survive\n";

/// Names of the upload temporaries in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".podlink-cp."))
        .collect()
}

/// Waits until the pod side has begun writing the big file into its
/// temporary directory.
fn wait_for_bytes_in_temporary(dir: &Path) {
    wait_until(PATIENCE, "the upload to reach the pod", || {
        temporaries(dir)
            .iter()
            .any(|t| fs::metadata(dir.join(t).join("big.img")).is_ok_and(|m| m.len() > 0))
            .then_some(())
    });
}

/// Waits until the pod side has ended and removed its temporary.
fn wait_for_cleanup(sandbox: &TestSandbox, dir: &Path) {
    wait_until(PATIENCE, "the pod side to end and clean up", || {
        let execs = sandbox
            .processes()
            .into_iter()
            .filter(|p| p.kind == ProcessKind::Exec)
            .count();
        (execs == 0 && temporaries(dir).is_empty()).then_some(())
    });
}

/// A sparse local file too big to finish before the test cuts it.
fn big_source(dir: &Path) -> std::path::PathBuf {
    let big = dir.join("big.img");
    fs::File::create(&big).unwrap().set_len(64 << 30).unwrap();
    big
}

fn upload_then(cut: impl FnOnce(&TestSandbox, u32)) -> (cp_support::Outcome, Vec<u8>) {
    let sandbox = TestSandbox::start();
    let temp = tempfile::tempdir().unwrap();
    let big = big_source(temp.path());
    let pod_dir = temp.path().join("in-pod");
    fs::create_dir(&pod_dir).unwrap();
    let target = pod_dir.join("big.img");
    fs::write(&target, OLD).unwrap();
    let running = start_with(
        sandbox.kubeconfig(),
        &[
            "cp",
            big.to_str().unwrap(),
            &format!("demo:{}", target.display()),
        ],
    );
    wait_for_bytes_in_temporary(&pod_dir);
    cut(&sandbox, running.pid());
    let out = running.wait();
    wait_for_cleanup(&sandbox, &pod_dir);
    let left = fs::read(&target).unwrap();
    (out, left)
}

#[test]
fn upload_cut_by_dropped_connections_keeps_the_old_file() {
    let (out, left) = upload_then(|sandbox, _| sandbox.fault(Fault::DropConnections));
    assert_eq!(out.code, Some(255), "{out}");
    assert!(out.stderr.starts_with("podlink: "), "{out}");
    assert_eq!(left, OLD, "the destination changed\n{out}");
}

#[test]
fn upload_by_a_killed_client_keeps_the_old_file() {
    let (out, left) = upload_then(|_, pid| {
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    });
    assert_eq!(out.code, None, "{out}");
    assert_eq!(left, OLD, "the destination changed\n{out}");
}

#[test]
fn completed_uploads_replace_and_merge_with_long_names() {
    let sandbox = TestSandbox::start();
    let temp = tempfile::tempdir().unwrap();
    let pod_dir = temp.path().join("in-pod");
    fs::create_dir(&pod_dir).unwrap();

    // A file over an existing file: replaced.
    let source = temp.path().join("new.txt");
    fs::write(&source, b"new content\n").unwrap();
    let target = pod_dir.join("existing.txt");
    fs::write(&target, OLD).unwrap();
    let out = podlink(
        &sandbox,
        &[
            "cp",
            source.to_str().unwrap(),
            &format!("demo:{}", target.display()),
        ],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(fs::read(&target).unwrap(), b"new content\n");

    // A tree with names past tar's 100-byte field (extension headers make
    // the archive bigger than the plain estimate) into an existing
    // directory that already holds part of it: merged, as kubectl does.
    let tree = temp.path().join("tree");
    let long_dir = tree.join("d".repeat(120));
    fs::create_dir_all(&long_dir).unwrap();
    let long_file = format!("{}.txt", "f".repeat(150));
    fs::write(long_dir.join(&long_file), b"deep\n").unwrap();
    fs::write(tree.join("top.txt"), b"top\n").unwrap();
    std::os::unix::fs::symlink(
        format!("{}/{long_file}", "d".repeat(120)),
        tree.join("link"),
    )
    .unwrap();
    fs::create_dir_all(pod_dir.join("tree")).unwrap();
    fs::write(pod_dir.join("tree").join("kept.txt"), b"kept\n").unwrap();
    let out = podlink(
        &sandbox,
        &[
            "cp",
            tree.to_str().unwrap(),
            &format!("demo:{}", pod_dir.display()),
        ],
    );
    assert_eq!(out.code, Some(0), "{out}");
    let landed = pod_dir.join("tree");
    assert_eq!(
        fs::read(landed.join("d".repeat(120)).join(&long_file)).unwrap(),
        b"deep\n"
    );
    assert_eq!(fs::read(landed.join("top.txt")).unwrap(), b"top\n");
    assert_eq!(fs::read(landed.join("link")).unwrap(), b"deep\n");
    assert_eq!(fs::read(landed.join("kept.txt")).unwrap(), b"kept\n");
    assert!(temporaries(&pod_dir).is_empty());
    assert!(temporaries(&landed).is_empty());
}
