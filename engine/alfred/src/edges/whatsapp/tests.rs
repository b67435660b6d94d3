//! The adapter against Meta's real bodies, vendored from `../shared/whatsapp-payloads/`
//! into `tests/fixtures/whatsapp-payloads/` so that a clone alone runs them.

use std::path::PathBuf;

use alfred_core::event::{Choice, OutMessage, Section};
use alfred_core::model::MessageKind;
use serde_json::{Value, json};

use super::errors::{SendFailure, classify};
use super::inbound::{DeliveryStatus, parse};
use super::outbound::{Recipient, mark_read_body, message_body, reaction_body};

fn payload(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/whatsapp-payloads");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name} (expected in {}): {e}", dir.display()))
}

fn json_of(name: &str) -> Value {
    serde_json::from_slice(&payload(name)).expect("fixture is JSON")
}

#[test]
fn text_message() {
    let b = parse(&payload("webhook_text.json")).unwrap();
    assert_eq!(b.messages.len(), 1);
    let m = &b.messages[0];
    assert_eq!(m.wa_id.as_deref(), Some("16505551234"));
    assert_eq!(m.phone_number_id.as_deref(), Some("106540352242922"));
    assert_eq!(m.timestamp, 1_749_416_383);
    assert_eq!(m.message.kind, Some(MessageKind::Text));
    assert_eq!(m.message.text.as_deref(), Some("Does it come in another color?"));
    assert_eq!(m.message.id.as_deref(), Some(m.wamid.as_str()));
    assert!(b.skipped.is_empty());
}

#[test]
fn every_documented_message_type_becomes_an_engine_message() {
    let cases: &[(&str, MessageKind)] = &[
        ("webhook_interactive_button_reply.json", MessageKind::Reply),
        ("webhook_interactive_list_reply.json", MessageKind::Reply),
        ("webhook_button_template_quick_reply.json", MessageKind::Reply),
        ("webhook_image.json", MessageKind::Image),
        ("webhook_audio_voice.json", MessageKind::Audio),
        ("webhook_video.json", MessageKind::Video),
        ("webhook_document.json", MessageKind::Document),
        ("webhook_sticker.json", MessageKind::Sticker),
        ("webhook_location.json", MessageKind::Location),
        ("webhook_contacts.json", MessageKind::Contacts),
        ("webhook_reaction.json", MessageKind::Reaction),
        ("webhook_reaction_removed.json", MessageKind::Reaction),
        ("webhook_unsupported.json", MessageKind::Unsupported),
        ("webhook_text_reply_context.json", MessageKind::Text),
        ("webhook_value_level_errors.json", MessageKind::Unsupported),
    ];
    for (file, kind) in cases {
        let b = parse(&payload(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(b.messages.len(), 1, "{file}: {b:?}");
        assert_eq!(b.messages[0].message.kind, Some(*kind), "{file}");
        assert!(b.skipped.is_empty(), "{file}: {:?}", b.skipped);
    }
}

#[test]
fn replies_carry_ids_and_titles() {
    let b = parse(&payload("webhook_interactive_list_reply.json")).unwrap();
    let m = &b.messages[0].message;
    let raw = json_of("webhook_interactive_list_reply.json");
    let reply = &raw["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"]["list_reply"];
    assert_eq!(m.reply_id.as_deref(), reply["id"].as_str());
    assert_eq!(m.reply_title.as_deref(), reply["title"].as_str());
    assert!(b.messages[0].context_id.is_some());

    let b = parse(&payload("webhook_button_template_quick_reply.json")).unwrap();
    let raw = json_of("webhook_button_template_quick_reply.json");
    let button = &raw["entry"][0]["changes"][0]["value"]["messages"][0]["button"];
    assert_eq!(b.messages[0].message.reply_id.as_deref(), button["payload"].as_str());
}

#[test]
fn a_removed_reaction_has_an_empty_emoji() {
    let b = parse(&payload("webhook_reaction_removed.json")).unwrap();
    assert_eq!(b.messages[0].message.extra["emoji"], json!(""));
    let b = parse(&payload("webhook_reaction.json")).unwrap();
    assert_ne!(b.messages[0].message.extra["emoji"], json!(""));
}

#[test]
fn username_users_without_a_phone_are_identified_by_user_id() {
    let b = parse(&payload("webhook_bsuid_only_no_from.json")).unwrap();
    assert_eq!(b.messages.len(), 1);
    assert_eq!(b.messages[0].wa_id, None);
    assert_eq!(b.messages[0].user_id.as_deref(), Some("BSUID_123"));
}

#[test]
fn a_batch_of_two_changes_gives_two_messages() {
    let b = parse(&payload("webhook_batched_two_changes.json")).unwrap();
    // (The fixture reuses placeholder ids; dedupe happens later, by wamid, in the worker.)
    assert_eq!(b.messages.len(), 2);
    assert!(b.messages.iter().all(|m| m.message.kind == Some(MessageKind::Text)));
}

#[test]
fn statuses_including_failures() {
    for (file, status) in [
        ("webhook_status_sent.json", DeliveryStatus::Sent),
        ("webhook_status_delivered.json", DeliveryStatus::Delivered),
        ("webhook_status_read.json", DeliveryStatus::Read),
        ("webhook_status_failed_131049.json", DeliveryStatus::Failed),
        ("webhook_status_failed_131047.json", DeliveryStatus::Failed),
    ] {
        let b = parse(&payload(file)).unwrap();
        assert!(b.messages.is_empty(), "{file}");
        assert_eq!(b.statuses.len(), 1, "{file}");
        assert_eq!(b.statuses[0].status, status, "{file}");
    }
    let b = parse(&payload("webhook_status_failed_131047.json")).unwrap();
    assert_eq!(b.statuses[0].errors[0].code, 131_047);
}

#[test]
fn system_messages_are_identity_changes_not_member_messages() {
    let b = parse(&payload("webhook_system_user_changed_number.json")).unwrap();
    assert!(b.messages.is_empty());
    assert_eq!(b.system.len(), 1);
    assert_eq!(b.system[0].kind, "user_changed_number");
    assert!(b.system[0].new_wa_id.is_some());
}

#[test]
fn unknown_future_types_and_broken_parts_do_not_fail_the_batch() {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "changes": [{ "field": "messages", "value": { "messages": [
            { "from": "1", "id": "wamid.a", "timestamp": "1", "type": "hologram", "hologram": {} },
            { "from": "1", "timestamp": "1", "type": "text", "text": { "body": "no id" } },
            { "id": "wamid.c", "timestamp": "1", "type": "text", "text": { "body": "no sender" } },
            { "from": "1", "id": "wamid.d", "timestamp": "1", "type": "text", "text": { "body": "fine" } }
        ] } }, { "field": "account_update", "value": {} }] }]
    });
    let b = parse(body.to_string().as_bytes()).unwrap();
    let ids: Vec<&str> = b.messages.iter().map(|m| m.wamid.as_str()).collect();
    assert_eq!(ids, ["wamid.a", "wamid.d"]);
    assert_eq!(b.messages[0].message.kind, Some(MessageKind::Unsupported));
    assert_eq!(b.messages[0].message.extra["type"], json!("hologram"));
    assert_eq!(b.skipped.len(), 3, "{:?}", b.skipped);
}

#[test]
fn non_webhooks_are_refused() {
    assert!(parse(b"not json").is_err());
    assert!(parse(b"{\"hello\": 1}").is_err());
    assert!(parse(b"[]").is_err());
}

#[test]
fn outbound_text_matches_metas_example_shape() {
    let expected = json_of("outbound_text.json");
    let body = expected["text"]["body"].as_str().unwrap().to_owned();
    let got = message_body(
        &Recipient::Phone(expected["to"].as_str().unwrap().to_owned()),
        &OutMessage::Text { body },
    );
    assert_eq!(got, expected);
}

#[test]
fn outbound_buttons_and_list_match_metas_shapes() {
    let got = message_body(
        &Recipient::Phone("16505551234".into()),
        &OutMessage::Buttons {
            body: "Clear the list?".into(),
            buttons: vec![
                Choice {
                    id: "yes".into(),
                    title: "Yes".into(),
                    description: None,
                },
                Choice {
                    id: "no".into(),
                    title: "No".into(),
                    description: None,
                },
            ],
            footer: Some("Alfred".into()),
        },
    );
    assert_eq!(got["to"], json!("+16505551234"));
    assert_eq!(got["interactive"]["type"], json!("button"));
    assert_eq!(
        got["interactive"]["action"]["buttons"][1],
        json!({ "type": "reply", "reply": { "id": "no", "title": "No" } })
    );
    assert_eq!(got["interactive"]["footer"], json!({ "text": "Alfred" }));

    // Meta's list example, rebuilt from our types (its text header is not something flows send).
    let mut expected = json_of("outbound_interactive_list.json");
    let ex = expected["interactive"].clone();
    let sections: Vec<Section> = ex["action"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Section {
            title: s["title"].as_str().map(str::to_owned),
            rows: s["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| Choice {
                    id: r["id"].as_str().unwrap().into(),
                    title: r["title"].as_str().unwrap().into(),
                    description: r["description"].as_str().map(str::to_owned),
                })
                .collect(),
        })
        .collect();
    let got = message_body(
        &Recipient::Phone(expected["to"].as_str().unwrap().into()),
        &OutMessage::List {
            body: ex["body"]["text"].as_str().unwrap().into(),
            button: ex["action"]["button"].as_str().unwrap().into(),
            sections,
            footer: ex["footer"]["text"].as_str().map(str::to_owned),
        },
    );
    expected["interactive"].as_object_mut().unwrap().remove("header");
    assert_eq!(got, expected);
}

#[test]
fn outbound_template_reaction_and_read_receipts() {
    let got = message_body(
        &Recipient::Phone("+31 6 1234 5678".into()),
        &OutMessage::Template {
            name: "chore_reminder".into(),
            language: "en_US".into(),
            params: vec!["dishes".into()],
        },
    );
    assert_eq!(got["to"], json!("+31612345678"));
    assert_eq!(
        got["template"],
        json!({ "name": "chore_reminder", "language": { "code": "en_US" },
                "components": [{ "type": "body", "parameters": [{ "type": "text", "text": "dishes" }] }] })
    );
    let expected = json_of("outbound_reaction.json");
    let r = reaction_body(
        &Recipient::Phone(expected["to"].as_str().unwrap().into()),
        expected["reaction"]["message_id"].as_str().unwrap(),
        expected["reaction"]["emoji"].as_str().unwrap(),
    );
    assert_eq!(r["reaction"], expected["reaction"]);
    assert_eq!(r["type"], json!("reaction"));
    assert_eq!(
        mark_read_body("wamid.x", false),
        json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.x" })
    );
    let typing = json_of("outbound_mark_as_read_typing.json");
    assert_eq!(mark_read_body(typing["message_id"].as_str().unwrap(), true), typing);
    let by_user_id = message_body(
        &Recipient::UserId("US.123".into()),
        &OutMessage::Text { body: "hi".into() },
    );
    assert_eq!(by_user_id["recipient"], json!("US.123"));
    assert!(by_user_id.get("to").is_none());
}

#[test]
fn graph_errors_are_classified_by_code() {
    assert!(matches!(
        classify(429, &payload("response_error_130429.json")),
        SendFailure::Retry { code: 130_429, .. }
    ));
    assert!(matches!(
        classify(400, &payload("response_error_131047.json")),
        SendFailure::WindowClosed { .. }
    ));
    assert!(matches!(
        classify(401, &payload("response_error_190.json")),
        SendFailure::Auth { code: 190, .. }
    ));
    let pair = br#"{"error":{"message":"(#131056) pair rate limit","code":131056}}"#;
    assert!(
        matches!(classify(400, pair), SendFailure::Retry { code: 131_056, min_backoff, .. } if min_backoff.as_secs() == 4)
    );
    let bad = br#"{"error":{"message":"(#131026) Message undeliverable","code":131026}}"#;
    assert!(matches!(
        classify(400, bad),
        SendFailure::Permanent { code: 131_026, .. }
    ));
    let tpl = br#"{"error":{"message":"(#132001) Template name does not exist","code":132001}}"#;
    assert!(matches!(
        classify(404, tpl),
        SendFailure::Permanent { code: 132_001, .. }
    ));
    assert!(matches!(
        classify(502, b"<html>bad gateway</html>"),
        SendFailure::Retry { code: 0, .. }
    ));
}
