//! Shopping-list updates through the real service, on both backends: Ben opts in,
//! Anna adds items by signed webhook, and the fake Graph API receives both Anna's reply
//! and Ben's update, while the items are in the database. (Every path of the flow, on a
//! virtual clock, is in `flows/tests/groceries.test.yaml`.)

use alfred::cli::serve::Roles;
use alfred_fake_graph as fake_graph;

use super::pipeline::{Backend, Running, eventually, sends as sent};
use crate::support::text_webhook;

const ANNA: &str = "31612345001";
const BEN: &str = "31612345002";
const TOM: &str = "31612345003";

on_both_backends!(an_opted_in_member_hears_about_anothers_change);

async fn an_opted_in_member_hears_about_anothers_change(backend: Backend) {
    let fake = fake_graph::start().await;
    let svc = Running::start(backend.build(&fake).await, Roles::ALL).await;

    assert_eq!(svc.post(&text_webhook(BEN, "wamid.L1", "list updates on")).await, 200);
    eventually("Ben's confirmation", || !sent(&fake).is_empty()).await;
    assert!(
        sent(&fake)[0]
            .1
            .starts_with("OK, I'll tell you when someone else changes"),
        "{:?}",
        sent(&fake)
    );

    assert_eq!(
        svc.post(&text_webhook(ANNA, "wamid.L2", "add milk, eggs and 2 bread pls"))
            .await,
        200
    );
    eventually("Anna's reply and Ben's update", || sent(&fake).len() >= 3).await;
    let after = sent(&fake)[1..].to_vec();
    assert!(
        after.contains(&(
            ANNA.to_owned(),
            "Added milk, eggs and 2 × bread. The list has 3 items.".to_owned()
        )),
        "{after:?}"
    );
    assert!(
        after.contains(&(
            BEN.to_owned(),
            "Anna added milk, eggs and 2 × bread to the shopping list.".to_owned()
        )),
        "{after:?}"
    );
    // Tom did not opt in, and Anna is not told about her own change.
    assert!(after.iter().all(|(to, _)| to != TOM), "{after:?}");
    assert_eq!(after.iter().filter(|(to, _)| to == ANNA).count(), 1, "{after:?}");

    let data = svc.service.store.load_data().unwrap();
    let items: Vec<(String, u32, String)> = data
        .list("shopping")
        .iter()
        .map(|i| (i.name.clone(), i.qty, i.added_by.clone()))
        .collect();
    assert_eq!(
        items,
        [
            ("milk".to_owned(), 1, "Anna".to_owned()),
            ("eggs".to_owned(), 1, "Anna".to_owned()),
            ("bread".to_owned(), 2, "Anna".to_owned())
        ]
    );
    assert_eq!(data.collection("list_updates")[0].fields["member"], "Ben");
    svc.stop().await;
}
