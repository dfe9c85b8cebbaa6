use std::fs;
use std::path::Path;

use super::*;

fn args(root: &Path, runtime: Runtime, registries: &[&str]) -> SetupArgs {
    SetupArgs {
        runtime,
        registries: registries.iter().map(|r| (*r).to_owned()).collect(),
        proxy: "127.0.0.1:5000".parse().unwrap(),
        dry_run: false,
        undo: false,
        force: false,
        root_dir: root.to_path_buf(),
        backup_dir: "/var/lib/bay-proxy/setup".into(),
    }
}

fn run_ok(a: &SetupArgs) -> String {
    let mut out = Vec::new();
    run(a, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Every file under `root`, with its text.
fn snapshot(root: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, fs::read_to_string(&p).unwrap_or_default()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn put(root: &Path, path: &str, text: &str) {
    let p = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn operators_files(root: &Path) {
    put(root, "/etc/containerd/config.toml", "version = 2\n# keep me\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause\"\n");
    put(
        root,
        "/etc/docker/daemon.json",
        "{\"log-driver\": \"journald\"}\n",
    );
    put(root, "/etc/hosts", "127.0.0.1 localhost\n");
    put(
        root,
        "/etc/containers/registries.conf",
        "unqualified-search-registries = [\"docker.io\"]\n",
    );
}

#[test]
fn setup_twice_changes_nothing_more_and_undo_puts_everything_back() {
    for (runtime, regs) in [
        (Runtime::Containerd, vec!["reg.test:5000", "docker.io"]),
        (Runtime::Docker, vec!["docker.io", "reg.test:5000"]),
        (Runtime::Podman, vec!["reg.test:5000"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        operators_files(root);
        let before = snapshot(root);
        let a = args(root, runtime, &regs);
        let first = run_ok(&a);
        assert!(first.contains("wrote "), "{first}");
        let after = snapshot(root);
        assert_ne!(after, before);
        let second = run_ok(&a);
        assert!(second.contains("nothing to change"), "{second}");
        assert_eq!(snapshot(root), after, "{runtime:?}");
        let undo = run_ok(&SetupArgs {
            undo: true,
            registries: Vec::new(),
            ..a
        });
        assert!(
            undo.contains("restored") || undo.contains("removed"),
            "{undo}"
        );
        let restored: Vec<_> = snapshot(root);
        assert_eq!(restored, before, "{runtime:?}");
    }
}

#[test]
fn dry_run_prints_the_diff_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    operators_files(dir.path());
    let before = snapshot(dir.path());
    let out = run_ok(&SetupArgs {
        dry_run: true,
        ..args(dir.path(), Runtime::Docker, &[])
    });
    assert!(out.contains("+  \"registry-mirrors\": ["), "{out}");
    assert!(out.contains("--- /etc/docker/daemon.json"), "{out}");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_malformed_file_stops_setup_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    operators_files(root);
    // The second registry's file is broken: the first one must not be
    // written either.
    put(
        root,
        "/etc/containerd/certs.d/b.test/hosts.toml",
        "server = [\n",
    );
    let before = snapshot(root);
    let err = run(
        &args(root, Runtime::Containerd, &["a.test", "b.test"]),
        &mut Vec::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("/etc/containerd/certs.d/b.test/hosts.toml"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(snapshot(root), before);
}

#[test]
fn an_unreadable_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A folder where the file should be cannot be read as one.
    fs::create_dir_all(root.join("etc/docker/daemon.json")).unwrap();
    let before = snapshot(root);
    let err = run(&args(root, Runtime::Docker, &[]), &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot read /etc/docker/daemon.json"),
        "{err}"
    );
    assert_eq!(snapshot(root), before);
}

#[test]
fn undo_refuses_files_changed_since_and_force_puts_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    operators_files(root);
    let a = args(root, Runtime::Docker, &[]);
    run_ok(&a);
    put(root, "/etc/docker/daemon.json", "{\"changed\": true}\n");
    let undo = SetupArgs {
        undo: true,
        registries: Vec::new(),
        ..a
    };
    let err = run(&undo, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("changed since setup"), "{err}");
    assert_eq!(
        fs::read_to_string(root.join("etc/docker/daemon.json")).unwrap(),
        "{\"changed\": true}\n"
    );
    run_ok(&SetupArgs {
        force: true,
        ..undo
    });
    assert_eq!(
        fs::read_to_string(root.join("etc/docker/daemon.json")).unwrap(),
        "{\"log-driver\": \"journald\"}\n"
    );
    let err = run(
        &SetupArgs {
            force: false,
            ..undo_args(root)
        },
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(err, SetupError::NothingToUndo { .. }), "{err}");
}

fn undo_args(root: &Path) -> SetupArgs {
    SetupArgs {
        undo: true,
        ..args(root, Runtime::Docker, &[])
    }
}

#[test]
fn a_second_registry_keeps_the_first_backup() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    operators_files(root);
    let before = snapshot(root);
    run_ok(&args(root, Runtime::Podman, &["a.test"]));
    run_ok(&args(root, Runtime::Podman, &["b.test"]));
    let text = fs::read_to_string(root.join("etc/containers/registries.conf.d/50-bay-proxy.conf"))
        .unwrap();
    assert!(text.contains("a.test") && text.contains("b.test"), "{text}");
    run_ok(&SetupArgs {
        undo: true,
        registries: Vec::new(),
        ..args(root, Runtime::Podman, &[])
    });
    assert_eq!(snapshot(root), before);
}

#[test]
fn registries_are_named_as_references_name_them() {
    assert_eq!(
        normalize_registry("https://Registry-1.Docker.io/").unwrap(),
        "docker.io"
    );
    assert_eq!(
        normalize_registry("reg.test:5000").unwrap(),
        "reg.test:5000"
    );
    assert!(normalize_registry("reg.test/team").is_err());
    assert_eq!(registries(Runtime::Docker, &[]).unwrap(), ["docker.io"]);
    assert!(registries(Runtime::Podman, &[]).is_err());
}
