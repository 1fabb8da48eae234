//! Due times read from the store: why a secret is due (the status the scheduler and
//! `plan` act on), against the test kit's Secrets Manager.

use chrono::{DateTime, SecondsFormat, Utc};
use rotator_core::clock::Clock;
use rotator_core::due::{due_times, due_times_each, DueStatus, TagProblem, Unfinished};
use rotator_core::rotation::store::{AWSCURRENT, AWSPENDING, TAG_LAST_ROTATED};
use rotator_core::rotation::token;
use rotator_test_kit::{at, FakeStore, Latency, ManualClock, SecretBuilder, Sequence};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[tokio::test(start_paused = true)]
async fn each_kind_of_due_secret_says_why() {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let now = clock.now();
    let store = FakeStore::new(&clock, &Sequence::default());
    let days = |n: i64| chrono::Duration::days(n);
    let tagged = |id: &str, tag: String| {
        store.create_secret(id, "v");
        store.edit(id, |s| {
            s.versions[0].created = now - days(100);
            s.tags.insert(TAG_LAST_ROTATED.into(), tag);
        });
    };
    tagged("future", rfc(now + days(3650)));
    tagged("garbled", "last tuesday".into());
    tagged("fresh", rfc(now - days(1)));
    // Our pending value, not current yet; and our value current, consumers unconfirmed.
    // And our value current while AWSPENDING still names it (stopped inside the finish).
    let cases: [(&str, &[&str]); 3] = [
        ("pending", &[AWSPENDING]),
        ("redeploy", &[AWSCURRENT]),
        ("finish", &[AWSCURRENT, AWSPENDING]),
    ];
    for (id, stages) in cases {
        let arn = store.create_secret(id, "v");
        let old = store.holder(id, AWSCURRENT).unwrap();
        store.edit(id, |s| {
            s.tags.insert(TAG_LAST_ROTATED.into(), rfc(now - days(1)));
        });
        let ours = token::token(&arn, &old, 0);
        store.seed_version(id, ours.as_str(), "new", stages, now);
    }
    let ids = [
        "future", "garbled", "fresh", "pending", "redeploy", "finish",
    ];
    let cfgs: Vec<_> = ids
        .iter()
        .map(|id| SecretBuilder::new(id, id).every(30 * DAY).build())
        .collect();
    let refs: Vec<_> = cfgs.iter().collect();
    let due: Vec<_> = due_times(&store, &refs, now)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    // A future tag is not trusted: due by the value's creation date, and said so.
    assert_eq!(due[0].status, DueStatus::InvalidTag);
    assert_eq!(due[0].tag_problem, Some(TagProblem::Future));
    assert_eq!(due[0].due, now - days(70));
    // An unparseable one counts as absent.
    assert_eq!(due[1].status, DueStatus::Scheduled);
    assert_eq!(due[1].tag_problem, Some(TagProblem::Unparseable));
    assert_eq!(due[1].due, now - days(70));
    assert_eq!(due[2].status, DueStatus::Scheduled);
    assert_eq!(due[2].due, now + days(29));
    // Unfinished rotations are due now; only the one whose value is current is a resume
    // that must not make a new value.
    assert_eq!(due[3].status, DueStatus::Unfinished(Unfinished::Pending));
    assert!(!due[3].status.resume_only());
    assert_eq!(due[4].status, DueStatus::Unfinished(Unfinished::Redeploy));
    assert!(due[4].status.resume_only());
    assert_eq!(due[5].status, DueStatus::Unfinished(Unfinished::Finish));
    assert!(due[3].due <= now && due[4].due <= now && due[5].due <= now);
    assert!(!DueStatus::Scheduled.resume_only() && !DueStatus::InvalidTag.resume_only());
}

/// At scale the metadata comes in ListSecrets pages of 100: each secret's due time is
/// handed on when its page arrives (a secret without our tag after its own extra read, a
/// missing one as its error), not once every page is read.
#[tokio::test(start_paused = true)]
async fn due_times_arrive_page_by_page() {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let now = clock.now();
    let store = FakeStore::new(&clock, &Sequence::default());
    let ids: Vec<String> = (0..250).map(|i| format!("p{i:03}")).collect();
    // p001 has no tag (its due time needs ListSecretVersionIds); p002 does not exist.
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| *i != 2) {
        store.create_secret(id, "v");
        if i != 1 {
            store.edit(id, |s| {
                s.tags.insert(
                    TAG_LAST_ROTATED.into(),
                    rfc(now - chrono::Duration::days(1)),
                );
            });
        }
    }
    let page = Duration::from_secs(10);
    let slow = Latency::new(store.clone()).with("ListSecrets", page);
    let cfgs: Vec<_> = ids
        .iter()
        .map(|id| SecretBuilder::new(id, id).every(30 * DAY).build())
        .collect();
    let refs: Vec<_> = cfgs.iter().collect();
    let t0 = tokio::time::Instant::now();
    let mut when = vec![None; ids.len()];
    due_times_each(&slow, &refs, now, |i, r| {
        assert!(when[i].is_none(), "{} answered twice", ids[i]);
        when[i] = Some((t0.elapsed(), r.is_ok()));
    })
    .await;
    let at = |i: usize| when[i].map(|(t, ok)| (t.as_secs(), ok));
    assert_eq!(at(0), Some((10, true)), "the first page's tagged secret");
    assert_eq!(at(1), Some((10, true)), "untagged, on the first page");
    assert_eq!(at(2), Some((10, false)), "missing, on the first page");
    assert_eq!(at(99), Some((10, true)));
    assert_eq!(at(100), Some((20, true)), "second page");
    assert_eq!(at(249), Some((30, true)), "last page");
    assert!(when.iter().all(Option::is_some));
}
