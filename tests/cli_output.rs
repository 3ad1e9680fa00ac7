//! Integration tests: every output path treats a closed stdout (`plinth ps -o json | head`)
//! as success — exit 0, no panic, nothing on stderr — as ripgrep does.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A PodList with `n` running pods (a few hundred KiB of JSON for n = 2000).
fn pod_list(n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"metadata":{{"name":"pod-{i}","namespace":"kube-system","uid":"u{i}"}},
                "spec":{{"containers":[{{"name":"c{i}","image":"x"}}]}},
                "status":{{"phase":"Running","containerStatuses":[{{"name":"c{i}","ready":true,
                "restartCount":0,"image":"x","imageID":"","containerID":"plinth://{i}",
                "state":{{"running":{{"startedAt":"2024-01-01T00:00:00Z"}}}}}}]}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"apiVersion":"v1","kind":"PodList","metadata":{{}},"items":[{}]}}"#,
        items.join(",")
    )
}

/// Runs plinth with `args`, stdout a pipe whose read end is closed before plinth writes,
/// and asserts a quiet exit 0.
#[track_caller]
fn assert_quiet_success_into_closed_pipe(args: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plinth");
    // Close the read end at once: every write plinth makes then fails with EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "plinth {args:?} into a closed pipe: {stderr}"
    );
    assert_eq!(out.status.code(), Some(0), "plinth {args:?}: {stderr}");
    assert!(stderr.is_empty(), "plinth {args:?} must be quiet: {stderr}");
}

#[test]
fn ps_json_into_closed_pipe_does_not_panic() {
    let addr = crate::support::fake_status_api(pod_list(2000));
    assert_quiet_success_into_closed_pipe(&["ps", "--agent", &addr, "-o", "json"]);
    assert_quiet_success_into_closed_pipe(&["ps", "--agent", &addr, "-o", "yaml"]);
    assert_quiet_success_into_closed_pipe(&["ps", "--agent", &addr]);
}

#[test]
fn print_commands_into_closed_pipe_do_not_panic() {
    for args in [
        &["config", "print", "init-defaults"][..],
        &["completion", "bash"],
        &["man"],
        &["--help"],
        &[
            "config",
            "validate",
            "--advertise-address",
            "127.0.0.1",
            "--node-name",
            "cp1",
        ],
    ] {
        assert_quiet_success_into_closed_pipe(args);
    }
}

#[test]
fn ps_json_into_pipe_closed_mid_output_exits_zero() {
    // The reader takes the first line, then goes away (`| head -1`).
    let addr = crate::support::fake_status_api(pod_list(2000));
    let mut child = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(["ps", "--agent", &addr, "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plinth");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    assert_eq!(first.trim(), "{");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
