//! The IO contract, checked: no async runtime may enter podlink-proto's
//! normal dependency tree.

use std::process::Command;

#[test]
fn tokio_is_not_a_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "podlink-proto",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(
        tree.contains("podlink-proto"),
        "unexpected tree output:\n{tree}"
    );
    for runtime in ["tokio ", "async-std ", "smol ", "mio "] {
        assert!(
            !tree.lines().any(|l| l.starts_with(runtime)),
            "{runtime}entered the sans-IO crate's tree:\n{tree}"
        );
    }
}
