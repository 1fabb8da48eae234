//! Consumers restarted by command, through the engine with the test kit's fake program
//! runner (paused tokio time): the verdict is a failure exactly when the command or its
//! verify fails or runs out of time, whatever the exit codes and delays; nothing is
//! revoked then; runs of one command are shared within the coalescing window; a rotation
//! whose consumers were not confirmed runs the commands again; the value never reaches a
//! program.

use crate::world::{t0, CLUSTER};
use proptest::prelude::*;
use rotator_core::config::SecretConfig;
use rotator_core::rotation::restart::{CommandVerdict, Program};
use rotator_core::rotation::store::{AWSCURRENT, TAG_DEPLOYED_VERSION};
use rotator_core::rotation::{Engine, Outcome, Quiet, RotationError, Step};
use rotator_test_kit::target::FakeTarget;
use rotator_test_kit::{
    command, Answer, Behaviour, FakeEcs, FakeRunner, FakeStore, ManualClock, Recorder,
    SecretBuilder, Sequence,
};
use std::sync::Arc;
use std::time::Duration;

const RESTART: &str = "/usr/local/bin/kubectl-restart";
const STATUS: &str = "/usr/local/bin/kubectl-status";
const VALUE: &str = "the-original-value-3fj29Dk!q";
const S: fn(u64) -> Duration = Duration::from_secs;

struct World {
    store: FakeStore,
    ecs: FakeEcs,
    runner: FakeRunner,
    engine: Engine<FakeStore, FakeEcs>,
}

fn world() -> World {
    let clock = ManualClock::new(t0());
    let seq = Sequence::default();
    let store = FakeStore::new(&clock, &seq);
    let ecs = FakeEcs::new(&clock, &seq);
    let runner = FakeRunner::new();
    let engine =
        Engine::new(store.clone(), ecs.clone(), Arc::new(clock)).with_program_runner(runner.port());
    World {
        store,
        ecs,
        runner,
        engine,
    }
}

fn secret(name: &str, verify: bool, timeout: Duration) -> SecretConfig {
    let verify = verify.then_some(&[STATUS, "rollout", "status"][..]);
    SecretBuilder::new(name, &format!("app/{name}"))
        .command(command(&[RESTART, "rollout", "restart"], verify, timeout))
        .build()
}

/// What the model says a consumer command ends as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Model {
    /// With the verify attempts it took.
    Ok(u32),
    Failed,
    TimedOut,
}

/// The engine's schedule, replayed: the command, then verify attempts with a pause of
/// 2 s doubling up to 30 s between them, all within `timeout` from the command's start.
/// A program whose run lasts as long as the time left (or longer) is out of time.
fn model(cmd: &Answer, verify: Option<&[Answer]>, timeout: Duration) -> Model {
    if cmd.delay >= timeout {
        return Model::TimedOut;
    }
    if cmd.code != 0 {
        return Model::Failed;
    }
    let Some(verify) = verify else {
        return Model::Ok(0);
    };
    let mut t = cmd.delay;
    let mut pause = S(2);
    for i in 0.. {
        if t >= timeout {
            return Model::TimedOut;
        }
        let a = &verify[i.min(verify.len() - 1)];
        if a.delay >= timeout - t {
            return Model::TimedOut;
        }
        t += a.delay;
        if a.code == 0 {
            return Model::Ok(i as u32 + 1);
        }
        t += pause;
        pause = (pause * 2).min(S(30));
    }
    unreachable!()
}

fn answer() -> impl Strategy<Value = Answer> {
    // Mostly quick runs, some exits non-zero, some long ones (past the timeout).
    (
        prop_oneof![4 => Just(0), 1 => Just(1), 1 => Just(137)],
        prop_oneof![3 => 0u64..8, 1 => 8u64..90],
    )
        .prop_map(|(code, secs)| Answer::exit(code, S(secs)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Random exit codes and delays of the command and of each verify attempt, with or
    /// without an ECS service beside it that rolls back: the rotation succeeds exactly
    /// when every consumer does, its outcome says which failed how, the verdict matches
    /// the model, and the revoke runs only after a success.
    #[test]
    fn the_rotation_fails_exactly_when_a_command_or_verify_fails_or_times_out(
        cmd in answer(),
        verify in proptest::option::of(proptest::collection::vec(answer(), 1..6)),
        timeout in 10u64..60,
        ecs_rolls_back in proptest::bool::weighted(0.2),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let w = world();
            w.store.create_secret("app/db", VALUE);
            w.runner.script(RESTART, vec![cmd.clone()]);
            if let Some(v) = &verify {
                w.runner.script(STATUS, v.clone());
            }
            let behaviour = if ecs_rolls_back {
                Behaviour::Failing { start: S(30) }
            } else {
                Behaviour::Healthy { start: S(30), drain: S(10) }
            };
            w.ecs.add_service(CLUSTER, "api", 1, behaviour);
            let target = FakeTarget::new().with_revoke();
            let cfg = SecretBuilder::new("db", "app/db")
                .target(target.target())
                .redeploy(CLUSTER, &["api"])
                .command(command(
                    &[RESTART, "rollout", "restart"],
                    verify.as_ref().map(|_| &[STATUS][..]),
                    S(timeout),
                ))
                .build();
            let want = model(&cmd, verify.as_deref(), S(timeout));
            let r = w.engine.rotate(&cfg, Default::default(), &Quiet).await;
            let verdict = match &r {
                Ok(report) => report.commands.values().next().cloned(),
                Err(RotationError::Consumers { commands, .. }) => commands.values().next().cloned(),
                Err(e) => panic!("unexpected error: {e}"),
            };
            let verdict = verdict.expect("one command verdict");
            let got = match &verdict {
                CommandVerdict::Ok { verify_attempts } => Model::Ok(*verify_attempts),
                CommandVerdict::Failed { .. } => Model::Failed,
                CommandVerdict::TimedOut { .. } => Model::TimedOut,
            };
            prop_assert_eq!(got, want, "{:?}", verdict);
            let outcome = r.as_ref().map(|r| r.outcome).unwrap_or_else(|e| e.outcome());
            let expected = match (ecs_rolls_back, want) {
                (true, _) => Outcome::RolledBack,
                (false, Model::TimedOut) => Outcome::Stalled,
                (false, Model::Failed) => Outcome::Failed,
                (false, Model::Ok(_)) => Outcome::Success,
            };
            prop_assert_eq!(outcome, expected);
            prop_assert_eq!(target.count(Step::Revoke), usize::from(expected == Outcome::Success));
            // The value became current either way (consumers come after finish), and the
            // deployed-version tag only on success.
            let tags = w.store.secret("app/db").tags;
            let current = w.store.holder("app/db", AWSCURRENT);
            prop_assert_eq!(
                tags.get(TAG_DEPLOYED_VERSION).map(String::as_str),
                (expected == Outcome::Success).then(|| current.as_ref().unwrap().as_str())
            );
            // The command ran once; verify only after a command that exited 0, and never
            // a program with the value.
            prop_assert_eq!(w.runner.runs_of(RESTART).len(), 1);
            if cmd.code != 0 || cmd.delay >= S(timeout) {
                prop_assert!(w.runner.runs_of(STATUS).is_empty());
            }
            for ran in w.runner.runs() {
                prop_assert!(!ran.stdin);
                prop_assert!(ran.env.values().all(|v| !v.contains(VALUE)));
                prop_assert!(ran.argv.iter().all(|a| !a.contains(VALUE)));
            }
            Ok(())
        })?;
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_command_is_a_failed_rotation_with_its_status_and_masked_output() {
    let w = world();
    w.store.create_secret("app/db", VALUE);
    let rec = Recorder::new();
    let engine = Engine::new(
        w.store.clone(),
        w.ecs.clone(),
        Arc::new(ManualClock::new(t0())),
    )
    .with_program_runner(w.runner.port())
    .with_telemetry(rec.sink());
    // The program echoes the old value (it read the secret itself): masked.
    w.runner.script(
        RESTART,
        vec![Answer::exit(3, S(1)).with_stderr(&format!(
            "error: deployment \"api\" not found\nold value was {VALUE}"
        ))],
    );
    let cfg = secret("db", false, S(60));
    let e = engine
        .rotate(&cfg, Default::default(), &Quiet)
        .await
        .unwrap_err();
    assert_eq!(e.outcome(), Outcome::Failed);
    assert_eq!(e.step(), Step::Wait);
    let RotationError::Consumers { commands, .. } = &e else {
        panic!("{e}")
    };
    match commands.values().next() {
        Some(CommandVerdict::Failed {
            program: Program::Command,
            exit_code: Some(3),
            status,
            output,
            ..
        }) => {
            assert_eq!(status, "exit status 3");
            assert!(output.contains("deployment \"api\" not found"), "{output}");
            assert!(!output.contains(VALUE), "the old value is not masked");
        }
        other => panic!("{other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("1 of 1 consumer commands failed: command /usr/local/bin/kubectl-restart rollout restart failed: command exit status 3"),
        "{text}"
    );
    assert!(!text.contains(VALUE));
    assert_eq!(
        rec.commands(
            "db",
            "command /usr/local/bin/kubectl-restart rollout restart",
            "failed"
        ),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn the_new_value_is_masked_in_the_output_and_never_given_to_the_programs() {
    let w = world();
    w.store.create_secret("app/db", VALUE);
    let cfg = secret("db", true, S(60));
    // Verify prints the new value: it cannot be known here, so the check is that the
    // verdict's output holds the mask and the environment what the docs promise.
    w.runner.script(STATUS, vec![Answer::exit(1, S(1))]);
    let r = w.engine.rotate(&cfg, Default::default(), &Quiet).await;
    assert!(r.is_err());
    let current = w.store.holder("app/db", AWSCURRENT).unwrap();
    let new_value = w.store.value_of("app/db", &current);
    for ran in w.runner.runs() {
        assert!(!ran.stdin);
        for v in ran.env.values().chain(ran.argv.iter()) {
            assert!(!v.contains(&new_value) && !v.contains(VALUE));
        }
        assert_eq!(ran.env["SECRET_ROTATOR_SECRET"], "db");
        assert_eq!(ran.env["SECRET_ROTATOR_SECRET_ID"], "app/db");
        assert_eq!(ran.env["SECRET_ROTATOR_VERSION"], current.as_str());
        assert_eq!(ran.env["SECRET_ROTATOR_SECRETS"], "db");
    }
    let steps: Vec<String> = w
        .runner
        .runs()
        .iter()
        .map(|r| r.env["SECRET_ROTATOR_STEP"].clone())
        .collect();
    assert_eq!(steps[0], "redeploy");
    assert!(steps[1..].iter().all(|s| *s == "verify"), "{steps:?}");

    // Now a verify that prints the value it finds: masked in the verdict.
    let w = world();
    w.store.create_secret("app/db", VALUE);
    let leak = Answer::exit(1, S(1)).with_stderr(&format!("unexpected value {VALUE}"));
    w.runner.script(RESTART, vec![leak]);
    let e = w
        .engine
        .rotate(&cfg, Default::default(), &Quiet)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unexpected value"), "{e}");
    assert!(!format!("{e:?}").contains(VALUE), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn verify_is_retried_with_backoff_until_it_succeeds() {
    let w = world();
    w.store.create_secret("app/db", VALUE);
    w.runner.script(
        STATUS,
        vec![
            Answer::exit(1, S(1)),
            Answer::exit(1, S(1)),
            Answer::exit(0, S(1)),
        ],
    );
    let cfg = secret("db", true, S(120));
    let r = w
        .engine
        .rotate(&cfg, Default::default(), &Quiet)
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Success);
    assert_eq!(
        r.commands.values().next(),
        Some(&CommandVerdict::Ok { verify_attempts: 3 })
    );
    let starts: Vec<_> = w.runner.runs_of(STATUS).iter().map(|r| r.started).collect();
    // 1 s per attempt, then pauses of 2 s and 4 s.
    assert_eq!(starts[1] - starts[0], S(3));
    assert_eq!(starts[2] - starts[1], S(5));
    assert_eq!(
        w.store.secret("app/db").tags.get(TAG_DEPLOYED_VERSION),
        w.store
            .holder("app/db", AWSCURRENT)
            .map(|v| v.as_str().to_owned())
            .as_ref()
    );
}

#[tokio::test(start_paused = true)]
async fn a_verify_failing_until_the_timeout_stalls_the_rotation_with_its_last_attempt() {
    let w = world();
    w.store.create_secret("app/db", VALUE);
    w.runner.script(
        STATUS,
        vec![Answer::exit(1, S(1)).with_stderr("Waiting for deployment rollout")],
    );
    let target = FakeTarget::new().with_revoke();
    let mut cfg = secret("db", true, S(30));
    cfg.target = target.target();
    let e = w
        .engine
        .rotate(&cfg, Default::default(), &Quiet)
        .await
        .unwrap_err();
    assert_eq!(e.outcome(), Outcome::Stalled);
    let RotationError::Consumers { commands, .. } = &e else {
        panic!("{e}")
    };
    match commands.values().next() {
        Some(CommandVerdict::TimedOut {
            program: Program::Verify,
            after,
            status,
            verify_attempts,
            output,
            ..
        }) => {
            assert_eq!(after, "30s");
            assert_eq!(status.as_deref(), Some("exit status 1"));
            assert!(*verify_attempts >= 3, "{verify_attempts}");
            assert_eq!(output, "Waiting for deployment rollout");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(target.count(Step::Revoke), 0, "revoked after a failure");
    // The last attempt ran out of time or was stopped: nothing keeps running.
    assert!(w.runner.runs().iter().all(|r| r.ended.is_some()));
}

#[tokio::test(start_paused = true)]
async fn rotations_of_one_command_within_the_window_share_one_run() {
    let w = world();
    for name in ["a", "b", "c", "d"] {
        w.store.create_secret(&format!("app/{name}"), VALUE);
    }
    w.runner.script(RESTART, vec![Answer::exit(0, S(5))]);
    // a and b verify, c does not (it shares the command, not the verify); d comes after
    // the window and gets its own run.
    let (a, b, c, d) = (
        secret("a", true, S(60)),
        secret("b", true, S(60)),
        secret("c", false, S(60)),
        secret("d", true, S(60)),
    );
    let engine = &w.engine;
    let late = async {
        tokio::time::sleep(S(10)).await;
        engine.rotate(&d, Default::default(), &Quiet).await
    };
    let (ra, rb, rc, rd) = tokio::join!(
        engine.rotate(&a, Default::default(), &Quiet),
        async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            engine.rotate(&b, Default::default(), &Quiet).await
        },
        engine.rotate(&c, Default::default(), &Quiet),
        late
    );
    for r in [&ra, &rb, &rc, &rd] {
        assert_eq!(r.as_ref().unwrap().outcome, Outcome::Success);
    }
    let runs = w.runner.runs_of(RESTART);
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert_eq!(runs[0].env["SECRET_ROTATOR_SECRETS"], "a b c");
    assert_eq!(runs[1].env["SECRET_ROTATOR_SECRETS"], "d");
    // One verify run for a and b, one for d.
    assert_eq!(w.runner.runs_of(STATUS).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_shared_run_answers_each_rotation_by_its_own_timeout() {
    let w = world();
    w.store.create_secret("app/short", VALUE);
    w.store.create_secret("app/long", VALUE);
    // verify succeeds at its fourth attempt: 1 + 2 + 1 + 4 + 1 + 8 + 1 = 18 s in.
    w.runner.script(
        STATUS,
        vec![
            Answer::exit(1, S(1)),
            Answer::exit(1, S(1)),
            Answer::exit(1, S(1)),
            Answer::exit(0, S(1)),
        ],
    );
    let short = secret("short", true, S(10));
    let long = secret("long", true, S(60));
    let (rs, rl) = tokio::join!(
        w.engine.rotate(&short, Default::default(), &Quiet),
        w.engine.rotate(&long, Default::default(), &Quiet)
    );
    assert_eq!(rs.unwrap_err().outcome(), Outcome::Stalled);
    let rl = rl.unwrap();
    assert_eq!(
        rl.commands.values().next(),
        Some(&CommandVerdict::Ok { verify_attempts: 4 })
    );
    assert_eq!(w.runner.runs_of(RESTART).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn consumers_not_confirmed_are_restarted_again_by_the_next_run_without_a_new_value() {
    let w = world();
    w.store.create_secret("app/db", VALUE);
    w.runner
        .script(RESTART, vec![Answer::exit(1, S(1)), Answer::exit(0, S(1))]);
    let cfg = secret("db", false, S(60));
    let e = w
        .engine
        .rotate(&cfg, Default::default(), &Quiet)
        .await
        .unwrap_err();
    assert_eq!(e.outcome(), Outcome::Failed);
    let current = w.store.holder("app/db", AWSCURRENT).unwrap();
    assert!(!w
        .store
        .secret("app/db")
        .tags
        .contains_key(TAG_DEPLOYED_VERSION));
    // The next run (a retry: fresh) finds the value current and its consumers owed.
    let opts = rotator_core::rotation::RotateOptions {
        fresh: true,
        ..Default::default()
    };
    let r = w.engine.rotate(&cfg, opts, &Quiet).await.unwrap();
    assert_eq!(r.outcome, Outcome::Success);
    assert_eq!(r.resumed.as_deref(), Some("redeploy"));
    assert_eq!(w.store.holder("app/db", AWSCURRENT), Some(current.clone()));
    assert_eq!(w.runner.runs_of(RESTART).len(), 2);
    // The resumed run did not hold the value: it read it back to mask the output.
    assert_eq!(
        w.store.secret("app/db").tags.get(TAG_DEPLOYED_VERSION),
        Some(&current.as_str().to_owned())
    );
}

#[tokio::test(start_paused = true)]
async fn a_missing_program_fails_the_precheck_before_anything_changes() {
    let w = world();
    w.store.create_secret("app/db", VALUE);
    w.runner.missing(STATUS);
    let before = w.store.holder("app/db", AWSCURRENT);
    let cfg = secret("db", true, S(60));
    let e = w
        .engine
        .rotate(&cfg, Default::default(), &Quiet)
        .await
        .unwrap_err();
    assert_eq!(e.step(), Step::Start);
    assert!(
        e.to_string()
            .contains("verify cannot start /usr/local/bin/kubectl-status"),
        "{e}"
    );
    assert_eq!(w.store.holder("app/db", AWSCURRENT), before);
    assert!(w.runner.runs().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_engine_without_a_runner_fails_command_consumers_clearly() {
    let clock = ManualClock::new(t0());
    let seq = Sequence::default();
    let store = FakeStore::new(&clock, &seq);
    store.create_secret("app/db", VALUE);
    let engine = Engine::new(store.clone(), FakeEcs::new(&clock, &seq), Arc::new(clock));
    let e = engine
        .rotate(&secret("db", false, S(60)), Default::default(), &Quiet)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no program runner"), "{e}");
    assert_eq!(e.step(), Step::Start);
}
