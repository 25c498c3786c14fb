//! The systemd units of `deploy/systemd/`: `systemd-analyze verify` accepts them (with the
//! test binary in place of `/usr/local/bin/swpt-trade`), and they keep the rules of
//! README.md#running-without-docker (restart on failure, an unprivileged user, hardening,
//! everything after `swpt-trade-configure.service`).

use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: [&str; 4] = [
    "swpt-trade-configure.service",
    "swpt-trade-solver.service",
    "swpt-trade-webserver.service",
    "swpt-trade-worker@.service",
];

fn unit_text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/systemd")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// Copies the units to a fresh directory with the test binary as the executable, and a
/// `swpt-trade-worker@0.service` instance of the template.
fn units_in_temp_dir(tag: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swpt-units-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for name in UNITS {
        let text = edit(&unit_text(name)).replace(
            "/usr/local/bin/swpt-trade",
            env!("CARGO_BIN_EXE_swpt-trade"),
        );
        std::fs::write(dir.join(name), &text).unwrap();
        if name == "swpt-trade-worker@.service" {
            std::fs::write(dir.join("swpt-trade-worker@0.service"), &text).unwrap();
        }
    }
    dir
}

fn verify(dir: &Path) -> std::process::Output {
    let units: Vec<String> = [
        "swpt-trade-configure.service",
        "swpt-trade-solver.service",
        "swpt-trade-webserver.service",
        "swpt-trade-worker@0.service",
    ]
    .iter()
    .map(|u| format!("./{u}"))
    .collect();
    Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(&units)
        .current_dir(dir)
        .output()
        .expect("systemd-analyze is installed")
}

#[test]
fn systemd_analyze_accepts_the_units() {
    let dir = units_in_temp_dir("good", str::to_owned);
    let out = verify(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.trim().is_empty(), "warnings: {stderr}");
    // The check does find mistakes: a bad value is reported.
    let bad = units_in_temp_dir("bad", |t| {
        t.replace("Restart=on-failure", "Restart=sometimes")
    });
    let out = verify(&bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sometimes"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(bad);
}

#[test]
fn the_units_run_unprivileged_hardened_and_after_configure() {
    for name in UNITS {
        let text = unit_text(name);
        let has = |line: &str| text.lines().any(|l| l.trim() == line);
        for line in [
            "User=swpt-trade",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "CapabilityBoundingSet=",
            "EnvironmentFile=/etc/swpt-trade/common.env",
        ] {
            assert!(has(line), "{name} lacks {line}");
        }
        if name == "swpt-trade-configure.service" {
            assert!(has("Type=oneshot") && has("RemainAfterExit=yes"), "{name}");
        } else {
            assert!(has("Restart=on-failure"), "{name}");
            assert!(has("Requires=swpt-trade-configure.service"), "{name}");
            assert!(
                text.contains("After=swpt-trade-configure.service"),
                "{name}"
            );
        }
    }
    assert!(
        unit_text("swpt-trade-worker@.service")
            .contains("EnvironmentFile=/etc/swpt-trade/worker-%i.env")
    );
}
