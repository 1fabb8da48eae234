//! The fake ECS's own rules: rollout timelines on tokio time and DescribeServices' shape.

use super::*;
use crate::clock::{at, ManualClock};
use crate::config::svc;
use rotator_core::rotation::deploy::{judge, Judgement};

const START: Duration = Duration::from_secs(40);
const DRAIN: Duration = Duration::from_secs(20);

fn ecs(services: &[(&str, Behaviour)]) -> (FakeEcs, ManualClock) {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let ecs = FakeEcs::new(&clock, &Sequence::default());
    for (name, b) in services {
        ecs.add_service("prod", name, 2, b.clone());
    }
    (ecs, clock)
}

fn healthy() -> Behaviour {
    Behaviour::Healthy {
        start: START,
        drain: DRAIN,
    }
}

fn found(d: &Described) -> &ServiceState {
    match d {
        Described::Found(s) => s,
        other => panic!("expected a service, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn forced_deployments_roll_out_over_tokio_time() {
    let (ecs, _) = ecs(&[
        ("api", healthy()),
        (
            "pdf",
            Behaviour::Failing {
                start: Duration::from_secs(50),
            },
        ),
    ]);
    let acct = Account::default();
    let before = ecs.service(&svc("api", "api"));
    assert!(before.is_none(), "no such cluster");
    let api0 = ecs.service(&svc("prod", "api")).unwrap();
    assert_eq!(api0.deployments.len(), 1);
    assert_eq!(
        api0.deployments[0].rollout_state.as_deref(),
        Some("COMPLETED")
    );
    let api = ecs.force_deploy(&acct, &svc("prod", "api")).await.unwrap();
    let pdf = ecs
        .force_deploy(&acct, &svc("prod", "pdf"))
        .await
        .unwrap()
        .id;
    let at = |s: &str| ecs.service(&svc("prod", s)).unwrap();

    tokio::time::advance(Duration::from_secs(1)).await;
    let s = at("api");
    assert_eq!(s.deployments.len(), 2);
    assert_eq!(
        (
            s.deployments[0].id.clone(),
            s.deployments[0].status.as_str()
        ),
        (api.id.clone(), "PRIMARY")
    );
    assert_eq!(
        s.deployments[0].rollout_state.as_deref(),
        Some("IN_PROGRESS")
    );
    assert_eq!((s.deployments[0].running, s.deployments[1].running), (0, 2));
    assert_eq!(s.deployments[1].status, "ACTIVE");
    assert_eq!(judge(&s, &api.id, api.created), Judgement::Starting);

    tokio::time::advance(START).await; // 41 s: new tasks up, old ones draining
    let s = at("api");
    assert_eq!(
        (
            s.deployments.len(),
            s.deployments[0].running,
            s.deployments[0].pending
        ),
        (2, 2, 0)
    );
    assert_eq!(judge(&s, &api.id, api.created), Judgement::Draining);

    tokio::time::advance(Duration::from_secs(10)).await; // 51 s: pdf's circuit breaker fired
    let s = at("pdf");
    let failed = s.deployments.iter().find(|d| d.id == pdf).unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.rollout_state.as_deref()),
        ("ACTIVE", Some("FAILED"))
    );
    assert_eq!(
        failed.rollout_state_reason.as_deref(),
        Some(CIRCUIT_BREAKER_REASON)
    );
    let rollback = s.primary().unwrap();
    assert_ne!(rollback.id, pdf);
    assert_eq!(
        rollback.task_definition,
        s.deployments.last().unwrap().task_definition
    );
    assert!(s.events[0].contains("rolling back"), "{:?}", s.events);
    assert!(matches!(judge(&s, &pdf, None), Judgement::RolledBack(_)));

    tokio::time::advance(Duration::from_secs(10)).await; // 61 s: api done
    let s = at("api");
    assert_eq!(s.deployments.len(), 1);
    assert_eq!(s.deployments[0].rollout_state.as_deref(), Some("COMPLETED"));
    assert_eq!((s.running, s.desired), (2, 2));
    assert_eq!(judge(&s, &api.id, api.created), Judgement::Stable);
    assert!(s.events[0].contains("steady state"));

    tokio::time::advance(ROLLBACK_TIME).await; // pdf's rollback completed
    let s = at("pdf");
    assert_eq!(s.deployments.len(), 1);
    assert_ne!(s.deployments[0].id, pdf);
    assert_eq!(s.deployments[0].rollout_state.as_deref(), Some("COMPLETED"));
    assert!(matches!(judge(&s, &pdf, None), Judgement::RolledBack(_)));
}

#[tokio::test(start_paused = true)]
async fn a_stalled_rollout_never_completes_and_counts_failed_tasks() {
    let (ecs, _) = ecs(&[("api", Behaviour::Stall)]);
    let f = ecs
        .force_deploy(&Account::default(), &svc("prod", "api"))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(3600)).await;
    let s = ecs.service(&svc("prod", "api")).unwrap();
    let p = s.primary().unwrap();
    assert_eq!(p.id, f.id);
    assert_eq!(p.rollout_state.as_deref(), Some("IN_PROGRESS"));
    assert_eq!((p.running, p.desired), (1, 2));
    assert_eq!(p.failed_tasks, (3600 / TASK_FAILURE_EVERY.as_secs()) as i32);
    assert_eq!(judge(&s, &f.id, f.created), Judgement::Starting);
}

#[tokio::test(start_paused = true)]
async fn a_later_deployment_supersedes_ours() {
    let after = Duration::from_secs(10);
    let (ecs, _) = ecs(&[(
        "api",
        Behaviour::Superseded {
            after,
            start: START,
            drain: DRAIN,
        },
    )]);
    let f = ecs
        .force_deploy(&Account::default(), &svc("prod", "api"))
        .await
        .unwrap();
    tokio::time::advance(after + Duration::from_secs(1)).await;
    let s = ecs.service(&svc("prod", "api")).unwrap();
    let p = s.primary().unwrap().clone();
    assert_ne!(p.id, f.id);
    assert_eq!(
        judge(&s, &f.id, f.created),
        Judgement::Superseded(p.id.clone())
    );
    tokio::time::advance(START + DRAIN).await;
    let s = ecs.service(&svc("prod", "api")).unwrap();
    assert_eq!(judge(&s, &p.id, p.created), Judgement::Stable);
    // Someone else's deployment is not in our log of forces.
    assert_eq!(ecs.forced(&svc("prod", "api")).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn describe_services_shape_missing_services_and_limits() {
    let (ecs, _) = ecs(&[
        ("api", healthy()),
        ("gone", Behaviour::Missing),
        ("bg", Behaviour::CodeDeploy),
    ]);
    let acct = Account::default();
    let prod = ClusterName::from("prod");
    let got = ecs
        .describe(
            &acct,
            &prod,
            &[
                ServiceName::from("api"),
                ServiceName::from("gone"),
                ServiceName::from("bg"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(found(&got[0]).controller.as_deref(), Some("ECS"));
    assert_eq!(got[1], Described::Missing("MISSING".into()));
    assert!(!found(&got[2]).forceable());

    let eleven: Vec<ServiceName> = (0..11).map(|i| ServiceName::new(format!("s{i}"))).collect();
    let e = ecs.describe(&acct, &prod, &eleven).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterException"));
    let e = ecs
        .describe(
            &acct,
            &ClusterName::from("nope"),
            &[ServiceName::from("api")],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ClusterNotFoundException"));
    let e = ecs
        .force_deploy(&acct, &svc("nope", "api"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ClusterNotFoundException"));
    // A cluster exists without services: they are missing, the cluster is not.
    ecs.add_cluster("empty");
    let got = ecs
        .describe(
            &acct,
            &ClusterName::from("empty"),
            &[ServiceName::from("api")],
        )
        .await
        .unwrap();
    assert_eq!(got, [Described::Missing("MISSING".into())]);
    let e = ecs
        .force_deploy(&acct, &svc("empty", "api"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ServiceNotFoundException"));

    let e = ecs
        .force_deploy(&acct, &svc("prod", "bg"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterException"));
    // ECS names the controller in the message; the engine shows it.
    assert!(
        e.to_string().contains("CODE_DEPLOY deployment controller"),
        "{e}"
    );
    let e = ecs
        .force_deploy(&acct, &svc("prod", "gone"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code()),
        (ErrorClass::NotFound, Some("ServiceNotFoundException"))
    );

    // The call log: every call that reached ECS, with its result.
    assert_eq!(ecs.describe_calls().len(), 4);
    assert_eq!(ecs.describe_calls().iter().filter(|c| c.ok).count(), 2);
    let forces = ecs.force_calls();
    assert_eq!(forces.len(), 4);
    assert!(forces.iter().all(|f| f.result.is_err()));
    assert!(ecs.forced(&svc("prod", "bg")).is_empty());
    ecs.clear_calls();
    assert!(ecs.describe_calls().is_empty() && ecs.force_calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn deployment_dates_come_from_the_wall_clock_and_events_are_newest_first() {
    let (ecs, clock) = ecs(&[("api", healthy())]);
    let initial = ecs.service(&svc("prod", "api")).unwrap();
    assert!(initial.deployments[0].created.unwrap() < clock.now());
    tokio::time::advance(Duration::from_secs(5)).await;
    let f = ecs
        .force_deploy(&Account::default(), &svc("prod", "api"))
        .await
        .unwrap();
    assert_eq!(f.created, Some(clock.now()));
    let s = ecs.service(&svc("prod", "api")).unwrap();
    assert_eq!(s.primary().unwrap().created, f.created);
    assert!(s.events[0].contains(f.id.as_str()), "{:?}", s.events);
    ecs.push_events(
        &svc("prod", "api"),
        (0..EVENTS_SHOWN + 5).map(|i| format!("event {i}")),
    );
    let s = ecs.service(&svc("prod", "api")).unwrap();
    assert_eq!(s.events.len(), EVENTS_SHOWN);
    assert_eq!(s.events[0], format!("event {}", EVENTS_SHOWN + 4));
}

#[tokio::test(start_paused = true)]
async fn a_behaviour_change_applies_to_the_next_force_and_rollbacks_take_their_time() {
    let (ecs, _) = ecs(&[("pdf", Behaviour::Failing { start: START })]);
    let pdf = svc("prod", "pdf");
    ecs.set_rollback_time("prod", "pdf", Duration::from_secs(1));
    let f = ecs.force_deploy(&Account::default(), &pdf).await.unwrap();
    tokio::time::advance(START + Duration::from_secs(2)).await;
    let s = ecs.service(&pdf).unwrap();
    assert_eq!(s.deployments.len(), 1, "rolled back within a second");
    assert_ne!(s.deployments[0].id, f.id);
    ecs.set_behaviour("prod", "pdf", healthy());
    let g = ecs.force_deploy(&Account::default(), &pdf).await.unwrap();
    tokio::time::advance(START + DRAIN).await;
    let s = ecs.service(&pdf).unwrap();
    assert_eq!(judge(&s, &g.id, g.created), Judgement::Stable);
    // The other party's deployment.
    let ci = ecs.deploy_by_someone_else(&pdf, START, DRAIN);
    let s = ecs.service(&pdf).unwrap();
    assert_eq!(s.primary().unwrap().id, ci);
    assert_eq!(ecs.forced(&pdf).len(), 2);
}
