//! Graph API request bodies for `POST /{version}/{phone_number_id}/messages`.
//!
//! Shapes follow Meta's documented examples (see `../shared/whatsapp-payloads/outbound_*.json`).
//! Phone numbers always go out in E.164 with a `+`: without it Meta prepends the
//! *business* number's country code.

use alfred_core::event::OutMessage;
use serde_json::{Value, json};

/// Who a message goes to: a phone number, or a business-scoped user id (username users
/// whose phone Meta withholds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// E.164 phone number (a `+` is added if missing).
    Phone(String),
    /// Business-scoped user id (`CC.<digits>`).
    UserId(String),
}

fn e164(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    format!("+{digits}")
}

/// The request body for one message.
pub fn message_body(to: &Recipient, msg: &OutMessage) -> Value {
    let mut body = json!({ "messaging_product": "whatsapp", "recipient_type": "individual" });
    match to {
        Recipient::Phone(p) => body["to"] = Value::String(e164(p)),
        Recipient::UserId(u) => body["recipient"] = Value::String(u.clone()),
    }
    match msg {
        OutMessage::Text { body: text } => {
            body["type"] = json!("text");
            // Link previews only when there is a link: they cost a fetch on Meta's side.
            body["text"] =
                json!({ "body": text, "preview_url": text.contains("https://") || text.contains("http://") });
        }
        OutMessage::Buttons {
            body: text,
            buttons,
            footer,
        } => {
            let buttons: Vec<Value> = buttons
                .iter()
                .map(|b| json!({ "type": "reply", "reply": { "id": b.id, "title": b.title } }))
                .collect();
            let mut interactive =
                json!({ "type": "button", "body": { "text": text }, "action": { "buttons": buttons } });
            if let Some(f) = footer {
                interactive["footer"] = json!({ "text": f });
            }
            body["type"] = json!("interactive");
            body["interactive"] = interactive;
        }
        OutMessage::List {
            body: text,
            button,
            sections,
            footer,
        } => {
            let sections: Vec<Value> = sections
                .iter()
                .map(|s| {
                    let rows: Vec<Value> = s
                        .rows
                        .iter()
                        .map(|r| {
                            let mut row = json!({ "id": r.id, "title": r.title });
                            if let Some(d) = &r.description {
                                row["description"] = json!(d);
                            }
                            row
                        })
                        .collect();
                    let mut sec = json!({ "rows": rows });
                    if let Some(t) = &s.title {
                        sec["title"] = json!(t);
                    }
                    sec
                })
                .collect();
            let mut interactive = json!({ "type": "list", "body": { "text": text }, "action": { "button": button, "sections": sections } });
            if let Some(f) = footer {
                interactive["footer"] = json!({ "text": f });
            }
            body["type"] = json!("interactive");
            body["interactive"] = interactive;
        }
        OutMessage::Template { name, language, params } => {
            let mut template = json!({ "name": name, "language": { "code": language } });
            if !params.is_empty() {
                let parameters: Vec<Value> = params.iter().map(|p| json!({ "type": "text", "text": p })).collect();
                template["components"] = json!([{ "type": "body", "parameters": parameters }]);
            }
            body["type"] = json!("template");
            body["template"] = template;
        }
    }
    body
}

/// A reaction to a message (empty emoji removes it).
pub fn reaction_body(to: &Recipient, message_id: &str, emoji: &str) -> Value {
    let mut body = message_body(to, &OutMessage::Text { body: String::new() });
    if let Some(o) = body.as_object_mut() {
        o.remove("text");
    }
    body["type"] = json!("reaction");
    body["reaction"] = json!({ "message_id": message_id, "emoji": emoji });
    body
}

/// Marks an inbound message as read (optionally showing "typing…").
pub fn mark_read_body(message_id: &str, typing: bool) -> Value {
    let mut body = json!({ "messaging_product": "whatsapp", "status": "read", "message_id": message_id });
    if typing {
        body["typing_indicator"] = json!({ "type": "text" });
    }
    body
}
