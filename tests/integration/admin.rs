//! Household admin over chat through the real service, on both backends: Anna (an
//! admin) adds a member by signed webhooks, the new member's number is then answered,
//! the roster is in the database, and after Anna removes the member that number is a
//! stranger again. (Every path of the skill is in `flows/tests/admin.test.yaml`.)

use alfred::cli::serve::Roles;
use alfred::config::DEFAULT_UNKNOWN_SENDER_REPLY;
use alfred_fake_graph as fake_graph;

use super::pipeline::{Backend, Running, eventually, sends};
use crate::support::text_webhook;

const ANNA: &str = "31612345001";
const LISA: &str = "12125550100";

/// Posts `text` from `number`, waits for the `n`-th accepted send overall and returns it.
async fn say(
    svc: &Running,
    fake: &fake_graph::FakeGraph,
    number: &str,
    wamid: &str,
    text: &str,
    n: usize,
) -> (String, String) {
    assert_eq!(svc.post(&text_webhook(number, wamid, text)).await, 200);
    eventually(&format!("send {n} (after {text:?})"), || sends(fake).len() >= n).await;
    sends(fake).swap_remove(n - 1)
}

/// Names in the roster stored in the database (`None`: household.yaml's is in effect).
fn stored_names(svc: &Running) -> Option<Vec<String>> {
    let data = svc.service.store.load_data().unwrap();
    data.members.map(|ms| ms.into_iter().map(|m| m.name).collect())
}

on_both_backends!(an_admin_adds_and_removes_a_member_over_chat);

async fn an_admin_adds_and_removes_a_member_over_chat(backend: Backend) {
    let fake = fake_graph::start().await;
    let service = backend.build_with(&fake, &[("ALFRED_UNKNOWN_SENDERS", "reply")]).await;
    let svc = Running::start(service, Roles::ALL).await;

    // Before: Lisa's number is a stranger's, and no roster is stored.
    let reply = say(&svc, &fake, LISA, "wamid.AD1", "list", 1).await;
    assert_eq!(reply, (LISA.to_owned(), DEFAULT_UNKNOWN_SENDER_REPLY.to_owned()));
    assert_eq!(stored_names(&svc), None);

    let (to, text) = say(&svc, &fake, ANNA, "wamid.AD2", "add member Lisa", 2).await;
    assert_eq!(to, ANNA);
    assert_eq!(
        text,
        "What is Lisa's WhatsApp number, with the country code? (like +31 6 1234 5678)"
    );
    let (_, text) = say(&svc, &fake, ANNA, "wamid.AD3", "+1 212 555 0100", 3).await;
    assert_eq!(text, "What is Lisa's role?");
    let (_, text) = say(&svc, &fake, ANNA, "wamid.AD4", "child", 4).await;
    assert!(text.starts_with("Which time zone does Lisa live in?"), "{text}");
    let (_, text) = say(&svc, &fake, ANNA, "wamid.AD5", "america/new_york", 5).await;
    assert_eq!(
        text,
        "Added Lisa (child, America/New_York) with +12125550100. They can talk to me now."
    );

    // The roster lives in the database now: household.yaml's three plus Lisa.
    assert_eq!(
        stored_names(&svc),
        Some(vec!["Anna".into(), "Ben".into(), "Tom".into(), "Lisa".into()])
    );
    let lisa = svc.service.store.load_data().unwrap().members.unwrap().pop().unwrap();
    assert_eq!(lisa.phone.as_deref(), Some("+12125550100"));
    assert_eq!(lisa.timezone.name(), "America/New_York");

    // Lisa's number is answered by the flows now, not with the stranger reply.
    let (to, text) = say(&svc, &fake, LISA, "wamid.AD6", "members", 6).await;
    assert_eq!(to, LISA);
    assert!(text.starts_with("The Jansens: 4 members"), "{text}");
    assert!(text.contains("• Lisa: child, America/New_York"), "{text}");

    let (_, text) = say(&svc, &fake, ANNA, "wamid.AD7", "remove member Lisa", 7).await;
    assert_eq!(
        text,
        "Remove Lisa from the household? They will no longer be able to talk to me."
    );
    let (_, text) = say(&svc, &fake, ANNA, "wamid.AD8", "yes", 8).await;
    assert_eq!(text, "Removed Lisa. They can no longer talk to me.");
    assert_eq!(
        stored_names(&svc),
        Some(vec!["Anna".into(), "Ben".into(), "Tom".into()])
    );

    // Removed: a stranger again.
    let reply = say(&svc, &fake, LISA, "wamid.AD9", "list", 9).await;
    assert_eq!(reply, (LISA.to_owned(), DEFAULT_UNKNOWN_SENDER_REPLY.to_owned()));
    svc.stop().await;
}

/// `alfred check --database` on a copy of the shipped flows; returns (exit code, output).
fn check_with(flows: &std::path::Path, url: &str) -> (i32, String) {
    let mut out = Vec::new();
    let code = alfred::cli::check::run_with_database(flows, Some(url), &mut out).unwrap();
    (code, String::from_utf8(out).unwrap())
}

/// Stores `members` as the roster, as `member_set` / `member_remove` do.
fn store_roster(store: &alfred::edges::store::Store, members: Vec<alfred_core::flow::Member>) {
    use alfred_core::data::DataChange;
    use alfred_core::event::Effect;
    let commit = alfred::edges::store::EventCommit {
        member: "Anna".into(),
        effects: vec![Effect::Data(DataChange::SetMembers { members })],
        now: chrono::Utc::now(),
        ..Default::default()
    };
    store.commit_event(&commit).unwrap();
}

#[test]
fn check_with_a_database_validates_the_stored_members_and_the_flows_against_them() {
    use alfred_core::flow::Member;
    use alfred_core::model::Role;
    let tmp = crate::support::TempDir::new("admin-check");
    let flows = tmp.path().join("flows");
    crate::support::copy_dir(&super::service::repo().join("flows"), &flows);
    std::fs::write(
        flows.join("nudge.yaml"),
        "id: nudge\ntriggers:\n  - keywords: [nudge tom]\nsteps:\n  - send: { to: Tom, text: Time for bed! }\n",
    )
    .unwrap();
    let url = tmp.path().join("alfred.db").to_string_lossy().into_owned();
    let store = alfred::edges::store::Store::open(&url).unwrap();
    store.migrate().unwrap();

    // Nothing stored yet: household.yaml's members (Tom included) are in effect.
    let (code, out) = check_with(&flows, &url);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no members stored in the database"), "{out}");

    // Tom was removed over chat: the flow that still writes to him is reported.
    let member = |name: &str, phone: &str, role| Member {
        name: name.into(),
        phone: Some(phone.into()),
        user_id: None,
        role,
        timezone: chrono_tz::Europe::Amsterdam,
        language: "en".into(),
    };
    store_roster(
        &store,
        vec![
            member("Anna", "+31612345001", Role::Admin),
            member("Ben", "+31612345002", Role::Adult),
        ],
    );
    let (code, out) = check_with(&flows, &url);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("error[unknown-member]"), "{out}");
    assert!(out.contains("`to: Tom`: no stored member is called `Tom`"), "{out}");
    assert!(
        !out.contains("error[stored-members]"),
        "the roster itself is valid: {out}"
    );
    assert!(
        out.contains("warning[stored-members]: member `Tom` of household.yaml is not a member"),
        "{out}"
    );

    // A stored roster that breaks household.yaml's rules is reported with the same rules.
    store_roster(
        &store,
        vec![
            member("Anna", "+31612345001", Role::Admin),
            member("Tom", "+31612345001", Role::Child),
        ],
    );
    let (code, out) = check_with(&flows, &url);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("stored members: Anna already has that phone number"),
        "{out}"
    );
}
