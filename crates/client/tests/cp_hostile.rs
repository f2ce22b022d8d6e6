//! Hostile archives from a pod are refused and write nothing: the classes
//! of bug behind `kubectl cp`'s CVEs (absolute names, `..`, links that
//! escape, writes through links, hard links out, special files) plus an
//! extension header announcing a huge size. The pod's `tar` is a script
//! that prints a crafted archive, so the stream really crosses the exec
//! connection; its checksum matches, only the contents are malicious.

mod cp_support;

use std::fs;
use std::path::Path;

use podlink_client::cp::{CopyError, CopyRequest, Location, PodPath, UnsafeReason};
use podlink_testkit::TestSandbox;
use tar::EntryType;

use cp_support::{client, no_exec_left, pod_with_fake_tar};

/// One raw tar entry: the name and link bytes go in as given (the tar
/// crate's setters refuse `..`, which is the point here).
fn entry(name: &[u8], kind: EntryType, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    {
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    header.set_size(data.len() as u64);
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn dir(name: &str) -> Vec<u8> {
    entry(name.as_bytes(), EntryType::Directory, b"", b"")
}

fn file(name: &[u8], data: &[u8]) -> Vec<u8> {
    entry(name, EntryType::Regular, b"", data)
}

fn link(name: &str, target: &[u8]) -> Vec<u8> {
    entry(name.as_bytes(), EntryType::Symlink, target, b"")
}

fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = entries.concat();
    out.extend_from_slice(&[0; 1024]);
    out
}

/// A GNU long-name header announcing 1 GiB of name, then nothing.
fn huge_long_name() -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    header.set_size(1 << 30);
    header.set_entry_type(EntryType::GNULongName);
    header.set_mode(0o644);
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(&[b'a'; 4096]);
    out
}

fn staging_left(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".podlink-cp-"))
        .collect()
}

#[test]
fn hostile_archives_are_refused_and_write_nothing() {
    let sandbox = TestSandbox::start();
    let temp = tempfile::tempdir().unwrap();
    let base = temp.path();
    let evil = base.join("evil.tar");
    let source = base.join("src");
    fs::create_dir(&source).unwrap();
    let dest = base.join("dest");
    let pwned = base.join("pwned");
    let pwned_abs = pwned.display().to_string();

    type Case = (&'static str, Vec<u8>, Option<UnsafeReason>);
    let cases: Vec<Case> = vec![
        (
            "dot-dot name",
            archive(&[dir("src/"), file(b"src/../pwned", b"x")]),
            Some(UnsafeReason::ParentComponent),
        ),
        (
            "absolute name",
            archive(&[dir("src/"), file(pwned_abs.as_bytes(), b"x")]),
            Some(UnsafeReason::AbsolutePath),
        ),
        (
            "name outside the requested path",
            archive(&[dir("src/"), file(b"other/pwned", b"x")]),
            Some(UnsafeReason::OutsideRequestedPath),
        ),
        (
            "write through an escaping link",
            archive(&[
                dir("src/"),
                link("src/up", b"../.."),
                file(b"src/up/pwned", b"x"),
            ]),
            Some(UnsafeReason::ThroughLink),
        ),
        (
            "link escaping with ..",
            archive(&[dir("src/"), link("src/esc", b"../../pwned")]),
            Some(UnsafeReason::SymlinkEscapes),
        ),
        (
            "absolute link",
            archive(&[dir("src/"), link("src/abs", b"/etc/passwd")]),
            Some(UnsafeReason::SymlinkEscapes),
        ),
        (
            "link escaping through another link",
            archive(&[
                dir("src/"),
                dir("src/d/"),
                link("src/d/up", b".."),
                link("src/l1", b"d"),
                link("src/bad", b"l1/up/.."),
            ]),
            Some(UnsafeReason::SymlinkEscapes),
        ),
        (
            "top-level link",
            archive(&[link("src", b"/")]),
            Some(UnsafeReason::SymlinkEscapes),
        ),
        (
            "hard link out",
            archive(&[
                dir("src/"),
                entry(b"src/h", EntryType::Link, b"/etc/passwd", b""),
            ]),
            Some(UnsafeReason::HardlinkOutside),
        ),
        (
            "fifo",
            archive(&[dir("src/"), entry(b"src/fifo", EntryType::Fifo, b"", b"")]),
            Some(UnsafeReason::SpecialFile),
        ),
        (
            "character device",
            archive(&[dir("src/"), entry(b"src/null", EntryType::Char, b"", b"")]),
            Some(UnsafeReason::SpecialFile),
        ),
        ("huge long-name header", huge_long_name(), None),
    ];

    sandbox.block_on(async {
        let client = client(&sandbox).await;
        pod_with_fake_tar(&client, "hostile", &base.join("bin"), &evil).await;
        let request = || {
            CopyRequest::new(
                Location::Pod(PodPath {
                    namespace: None,
                    pod: "hostile".into(),
                    path: source.display().to_string(),
                }),
                Location::Local(dest.clone()),
            )
            .unwrap()
        };

        // Control: a benign archive through the same fake tar is copied.
        fs::write(&evil, archive(&[dir("src/"), file(b"src/ok", b"fine")])).unwrap();
        let report = client.copy(request()).await.expect("benign archive");
        assert_eq!(report.files, 1);
        assert_eq!(fs::read(dest.join("ok")).unwrap(), b"fine");
        fs::remove_dir_all(&dest).unwrap();

        for (what, bytes, reason) in cases {
            fs::write(&evil, bytes).unwrap();
            let err = client.copy(request()).await.expect_err(what);
            match (reason, &err) {
                (Some(expected), CopyError::UnsafeEntry { reason, .. }) => {
                    assert_eq!(*reason, expected, "{what}: {err}");
                }
                (None, CopyError::Archive(_)) => {}
                _ => panic!("{what}: unexpected error {err:?}"),
            }
            assert!(!dest.exists(), "{what}: the destination was written");
            assert!(!pwned.exists(), "{what}: a file outside was written");
            assert_eq!(
                staging_left(base),
                Vec::<String>::new(),
                "{what}: staging left behind"
            );
        }
    });
    no_exec_left(&sandbox);
}
