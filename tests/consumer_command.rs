//! Consumers restarted by command (`redeploy = [{ command = [...], verify = [...] }]`)
//! end to end: `rotate` and the daemon run real programs (shell scripts written here;
//! the daemon itself never uses a shell) against moto (Secrets Manager) and ecs-sim.
//! What a program saw is what it wrote down: its argv, environment (from /proc) and
//! stdin, in which no secret value may appear.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const INITIAL: &str = "initial-Value-1234-xyz";
const SEED: &str = r#"{"clusters":[{"name":"prod","services":[{"name":"api","desiredCount":1}]}]}"#;

/// Writes an executable shell script (the program a consumer entry names).
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A script that records what it was given: `<name>.argv` and `<name>.environ` (its
/// /proc cmdline and environ, NUL-separated), `<name>.stdin`, and one line per run in
/// `<name>.runs` (the secrets it ran for); then runs `then`.
fn recorder(dir: &Path, name: &str, then: &str) -> PathBuf {
    let d = dir.display();
    script(
        dir,
        &format!("{name}.sh"),
        &format!(
            "cat /proc/$$/cmdline >> '{d}/{name}.argv'\ncat /proc/$$/environ >> '{d}/{name}.environ'\ncat >> '{d}/{name}.stdin'\necho \"$SECRET_ROTATOR_SECRETS\" >> '{d}/{name}.runs'\n{then}"
        ),
    )
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read(dir.join(file))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn runs(dir: &Path, name: &str) -> Vec<String> {
    read(dir, &format!("{name}.runs"))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The variables of the first run's environment.
fn environ(dir: &Path, name: &str) -> Vec<String> {
    read(dir, &format!("{name}.environ"))
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn q(p: &Path) -> String {
    format!("\"{}\"", p.display())
}

/// `rotate NAME`: whether it succeeded, and stdout then stderr.
fn rotate(dir: &Path, name: &str, env: &[(String, String)]) -> (bool, String) {
    let out = rotator(&["rotate", name, "--config", dir.to_str().unwrap()], env);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `rotate NAME --json`: whether it succeeded, and the JSON on stdout.
fn rotate_json(dir: &Path, name: &str, env: &[(String, String)]) -> (bool, serde_json::Value) {
    let out = rotator(
        &["rotate", name, "--json", "--config", dir.to_str().unwrap()],
        env,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), v)
}

/// Nothing a program was given or printed may hold a value.
fn assert_no_value(work: &Path, values: &[&str]) {
    for entry in std::fs::read_dir(work).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        if path.extension().is_some_and(|e| e == "sh") {
            continue;
        }
        for v in values {
            assert!(
                !text.contains(v),
                "a secret value reached {}",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn command_then_verify_until_it_succeeds_beside_an_ecs_service_never_given_the_value() {
    let moto = Moto::start();
    let sim = EcsSim::start(&["--time-scale", "20"], SEED);
    let c = sm_client(&moto.url).await;
    create_secret(&c, "app/cmd", INITIAL, &[]).await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let restart = recorder(w, "restart", "echo restarted deployment/api");
    // verify fails twice ("rollout in progress"), then succeeds.
    let verify = recorder(
        w,
        "verify",
        &format!(
            "n=$(wc -l < '{d}/verify.runs')\nif [ \"$n\" -lt 3 ]; then echo 'Waiting for deployment \"api\" rollout to finish' >&2; exit 1; fi\necho 'deployment \"api\" successfully rolled out'",
            d = w.display()
        ),
    );
    let dir = config_dir(&format!(
        r#"
[[secret]]
name = "cmd"
secret_id = "app/cmd"
every = "30d"
stable_timeout = "2m"
redeploy = [
  {{ command = [{}, "rollout", "restart", "deployment/api"], verify = [{}, "rollout", "status"], env = {{ KUBECONFIG = "/etc/rotator/kubeconfig" }} }},
  {{ cluster = "prod", services = ["api"] }},
]
"#,
        q(&restart),
        q(&verify)
    ));
    let env = aws_env(Some(&moto.url), Some(&sim.url));
    let (ok, report) = rotate_json(dir.path(), "cmd", &env);
    assert!(ok, "{report:#}");
    let out = report.to_string();
    let key = format!("{} rollout restart deployment/api", restart.display());
    assert_eq!(report["commands"][&key]["verdict"], "ok", "{report:#}");
    assert_eq!(report["commands"][&key]["verify_attempts"], 3, "{report:#}");
    assert_eq!(report["services"]["prod/api"]["verdict"], "stable");

    let current = value_at(&c, "app/cmd", "AWSCURRENT").await;
    assert_ne!(current, INITIAL);
    let version = stages(&c, "app/cmd").await["AWSCURRENT"][0].clone();
    assert_eq!(runs(w, "restart"), ["cmd"]);
    assert_eq!(runs(w, "verify").len(), 3);
    // argv exactly as configured, no shell in between.
    assert_eq!(
        read(w, "restart.argv"),
        format!(
            "/bin/sh\0{}\0rollout\0restart\0deployment/api\0",
            restart.display()
        )
    );
    let mut vars = environ(w, "restart");
    vars.sort();
    let names: Vec<&str> = vars.iter().map(|v| v.split('=').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "KUBECONFIG",
            "LANG",
            "PATH",
            "SECRET_ROTATOR_SECRET",
            "SECRET_ROTATOR_SECRETS",
            "SECRET_ROTATOR_SECRET_ID",
            "SECRET_ROTATOR_STEP",
            "SECRET_ROTATOR_VERSION"
        ],
        "{vars:?}"
    );
    assert!(vars.contains(&format!("SECRET_ROTATOR_VERSION={version}")));
    assert!(vars.contains(&"SECRET_ROTATOR_SECRET_ID=app/cmd".to_owned()));
    assert!(vars.contains(&"SECRET_ROTATOR_STEP=redeploy".to_owned()));
    assert!(environ(w, "verify").contains(&"SECRET_ROTATOR_STEP=verify".to_owned()));
    // No AWS credentials of the daemon either.
    assert!(!read(w, "restart.environ").contains("AWS_"));
    assert_eq!(read(w, "restart.stdin"), "");
    assert_no_value(w, &[&current, INITIAL]);
    assert!(!out.contains(&current) && !out.contains(INITIAL));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_command_fails_the_rotation_with_its_status_and_masked_output_then_reruns() {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    create_secret(&c, "app/cmd", INITIAL, &[]).await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let gate = w.join("refuse");
    std::fs::write(&gate, "").unwrap();
    // It prints the old value (as a program reading the secret itself might): masked.
    let restart = recorder(
        w,
        "restart",
        &format!(
            "if [ -e '{g}' ]; then echo 'Error from server (NotFound): deployments \"api\" not found' >&2; echo 'old value {INITIAL}' >&2; exit 4; fi",
            g = gate.display()
        ),
    );
    let dir = config_dir(&format!(
        "[[secret]]\nname = \"cmd\"\nsecret_id = \"app/cmd\"\nevery = \"30d\"\nredeploy = [{{ command = [{}], timeout = \"1m\" }}]\n",
        q(&restart)
    ));
    let env = aws_env(Some(&moto.url), None);
    let (ok, out) = rotate(dir.path(), "cmd", &env);
    assert!(!ok, "{out}");
    assert!(out.contains("exit status 4"), "{out}");
    assert!(out.contains("(failed)"), "{out}");
    assert!(!out.contains(INITIAL), "the old value was printed: {out}");
    let mid = stages(&c, "app/cmd").await;
    let moved = mid["AWSCURRENT"][0].clone();
    let current = value_at(&c, "app/cmd", "AWSCURRENT").await;
    assert_ne!(current, INITIAL, "consumers run after the finish");

    // --json: the verdict with its exit code and the masked output.
    let (ok, v) = rotate_json(dir.path(), "cmd", &env);
    assert!(!ok);
    let verdict = &v["commands"][restart.display().to_string()];
    assert_eq!(verdict["verdict"], "failed", "{v:#}");
    assert_eq!(verdict["exit_code"], 4, "{v:#}");
    let output = verdict["output"].as_str().unwrap();
    assert!(output.contains("deployments \"api\" not found"), "{output}");
    assert!(output.contains("old value ***"), "{output}");
    assert_eq!(v["outcome"], "failed");

    // Fixed: the next run finds the value current and runs the command again (no second
    // value), then records the rotation.
    std::fs::remove_file(&gate).unwrap();
    let (ok, out) = rotate(dir.path(), "cmd", &env);
    assert!(ok, "{out}");
    let end = stages(&c, "app/cmd").await;
    assert_eq!(end["AWSCURRENT"], vec![moved]);
    assert_eq!(version_count(&c, "app/cmd").await, 2);
    assert_eq!(runs(w, "restart").len(), 3);
    assert_no_value(w, &[&current, INITIAL]);
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verify_that_never_succeeds_times_out_and_nothing_is_left_running() {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    create_secret(&c, "app/cmd", INITIAL, &[]).await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let restart = recorder(w, "restart", "");
    let revoke = recorder(w, "revoke", "");
    // verify fails fast twice, then hangs with a child of its own.
    let verify = recorder(
        w,
        "verify",
        &format!(
            "n=$(wc -l < '{d}/verify.runs')\nif [ \"$n\" -lt 3 ]; then echo 'rollout not finished' >&2; exit 1; fi\necho $$ > '{d}/pids'\nsleep 300 &\necho $! >> '{d}/pids'\nwait",
            d = w.display()
        ),
    );
    let dir = config_dir(&format!(
        "[[secret]]\nname = \"cmd\"\nsecret_id = \"app/cmd\"\nevery = \"30d\"\ntarget = {{ kind = \"command\", revoke = [{}] }}\nredeploy = [{{ command = [{}], verify = [{}], timeout = \"12s\" }}]\n",
        q(&revoke),
        q(&restart),
        q(&verify)
    ));
    let t0 = Instant::now();
    let (ok, v) = rotate_json(dir.path(), "cmd", &aws_env(Some(&moto.url), None));
    let took = t0.elapsed();
    assert!(!ok, "{v:#}");
    assert!(took < Duration::from_secs(40), "took {took:?}");
    assert_eq!(v["outcome"], "stalled", "{v:#}");
    let verdict = &v["commands"][restart.display().to_string()];
    assert_eq!(verdict["verdict"], "timed_out", "{v:#}");
    assert_eq!(verdict["program"], "verify", "{v:#}");
    assert_eq!(verdict["after"], "12s", "{v:#}");
    assert_eq!(verdict["verify_attempts"], 3, "{v:#}");
    // Nothing revoked: the old value must keep working for what did not restart.
    assert!(runs(w, "revoke").is_empty());
    let pids = read(w, "pids");
    let pids: Vec<&str> = pids.lines().collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in &pids {
        assert!(!alive(p), "process {p} of verify survived the timeout");
    }
    let current = value_at(&c, "app/cmd", "AWSCURRENT").await;
    assert_no_value(w, &[&current, INITIAL]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_runs_a_command_shared_by_two_secrets_once() {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    let old = [("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")];
    create_secret(&c, "app/one", INITIAL, &old).await;
    create_secret(&c, "app/two", "another-Initial-5678", &old).await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let restart = recorder(w, "restart", "");
    let port = free_port();
    let consumer = format!(
        "redeploy = [{{ command = [{}, \"rollout\", \"restart\", \"deployment/api\"] }}]",
        q(&restart)
    );
    let dir = config_dir(&format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\nredeploy_coalesce = \"20s\"\nmax_starts_per_minute = 1000\n\
         [[secret]]\nname = \"one\"\nsecret_id = \"app/one\"\nevery = \"30d\"\n{consumer}\n\
         [[secret]]\nname = \"two\"\nsecret_id = \"app/two\"\nevery = \"30d\"\n{consumer}\n"
    ));
    let mut cmd = Command::new(rotator_bin());
    cmd.args(["run", "--config", dir.path().to_str().unwrap()])
        .env_remove("AWS_PROFILE")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in aws_env(Some(&moto.url), None) {
        cmd.env(k, v);
    }
    let _daemon = Bg(cmd.spawn().unwrap());
    let url = format!("http://127.0.0.1:{port}/metrics");
    let label = format!(
        "command {} rollout restart deployment/api",
        restart.display()
    );
    let start = Instant::now();
    let mut body = String::new();
    // The command's verdict is counted before the rotation's end (its tags come after):
    // wait for both.
    let done = |body: &str, s: &str| {
        metric(
            body,
            &format!("secret_rotator_consumer_commands_total{{consumer=\"{label}\",outcome=\"ok\",secret=\"{s}\"}}"),
        ) == Some(1.0)
            && metric(
                body,
                &format!("secret_rotator_rotations_total{{outcome=\"success\",secret=\"{s}\"}}"),
            )
            .is_some_and(|v| v >= 1.0)
    };
    while !(done(&body, "one") && done(&body, "two")) {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "both rotations did not finish: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
        body = http_get(&url).map(|r| r.1).unwrap_or_default();
    }
    assert_eq!(runs(w, "restart"), ["one two"], "one run for both secrets");
    for s in ["one", "two"] {
        assert_eq!(
            metric(
                &body,
                &format!("secret_rotator_rotations_total{{outcome=\"success\",secret=\"{s}\"}}")
            ),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            metric(
                &body,
                &format!("secret_rotator_consumer_commands_total{{consumer=\"{label}\",outcome=\"failed\",secret=\"{s}\"}}")
            ),
            Some(0.0),
            "{body}"
        );
    }
    let values = [
        value_at(&c, "app/one", "AWSCURRENT").await,
        value_at(&c, "app/two", "AWSCURRENT").await,
    ];
    assert_no_value(w, &[&values[0], &values[1], INITIAL]);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_remote_and_plan_show_command_consumers() {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    create_secret(&c, "app/cmd", INITIAL, &[]).await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let restart = script(w, "restart.sh", "exit 0");
    let not_exec = w.join("status.sh");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    let dir = config_dir(&format!(
        "[[secret]]\nname = \"cmd\"\nsecret_id = \"app/cmd\"\nevery = \"30d\"\nredeploy = [{{ command = [{}, \"x\"], verify = [{}] }}, {{ command = [\"/nonexistent/ssh\", \"vm-1\"] }}]\n",
        q(&restart),
        q(&not_exec)
    ));
    let env = aws_env(Some(&moto.url), None);
    let (code, stdout, stderr) = check_remote(dir.path(), &env);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("restarts 2 consumer(s) by command"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "cmd: consumer command {} x: verify program {}: not executable",
            restart.display(),
            not_exec.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("cmd: consumer command /nonexistent/ssh vm-1: command program /nonexistent/ssh: No such file"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&format!("program {}:", restart.display())),
        "{stderr}"
    );

    // The dry run lists them; a real run refuses before changing anything.
    let (ok, out) = rotate(dir.path(), "cmd", &env);
    assert!(!ok, "{out}");
    assert!(out.contains("cannot start /nonexistent/ssh"), "{out}");
    assert_eq!(value_at(&c, "app/cmd", "AWSCURRENT").await, INITIAL);
    std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = config_dir(&format!(
        "[[secret]]\nname = \"cmd\"\nsecret_id = \"app/cmd\"\nevery = \"30d\"\nredeploy = [{{ command = [{}, \"x\"], verify = [{}], timeout = \"5m\" }}]\n",
        q(&restart),
        q(&not_exec)
    ));
    let out = rotator(
        &[
            "rotate",
            "cmd",
            "--dry-run",
            "--config",
            dir.path().to_str().unwrap(),
        ],
        &env,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "run consumer command {} x, then {} until it exits 0 (timeout 5m)",
            restart.display(),
            not_exec.display()
        )),
        "{text}"
    );
    let out = rotator(
        &["plan", "--wide", "--config", dir.path().to_str().unwrap()],
        &env,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("command {} x", restart.display())),
        "{text}"
    );
}
