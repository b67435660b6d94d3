//! Parsing webhook payloads: `entry[] × changes[] × messages[] / statuses[]`.
//!
//! Lenient by design: Meta adds message types and fields over time, so an unknown
//! type becomes an `Unsupported` message (the flows can answer it) instead of failing
//! the batch, and one malformed message never hides the others in the same POST.

use alfred_core::event::{InboundMessage, Values};
use alfred_core::model::MessageKind;
use serde_json::Value;

/// Everything one webhook POST carried.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WebhookBatch {
    /// Member messages.
    pub messages: Vec<Inbound>,
    /// Delivery status updates for messages Alfred sent.
    pub statuses: Vec<StatusUpdate>,
    /// System notices (a user changed number or user id).
    pub system: Vec<SystemChange>,
    /// Value-level errors Meta reported (e.g. 131000 "Unsupported webhook payload").
    pub errors: Vec<MetaError>,
    /// Parts that could not be understood, with the reason (counted and logged, never silent).
    pub skipped: Vec<String>,
}

/// One inbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// The message id (wamid), the dedupe key.
    pub wamid: String,
    /// The business number it was sent to.
    pub phone_number_id: Option<String>,
    /// Sender's WhatsApp id (phone digits), when Meta shares it.
    pub wa_id: Option<String>,
    /// Sender's business-scoped user id, when present.
    pub user_id: Option<String>,
    /// Unix seconds (when Meta triggered the webhook).
    pub timestamp: i64,
    /// The message type as Meta wrote it (for metrics; `text`, `interactive`, …).
    pub raw_type: String,
    /// Id of the message it replies to or quotes, if any.
    pub context_id: Option<String>,
    /// What the engine sees.
    pub message: InboundMessage,
}

/// Delivery state of an outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeliveryStatus {
    /// Accepted by WhatsApp.
    Sent,
    /// On the member's phone.
    Delivered,
    /// Read.
    Read,
    /// Voice note played.
    Played,
    /// Failed, see the errors.
    Failed,
}

impl DeliveryStatus {
    /// Lowercase name as Meta writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Played => "played",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// A status webhook for a message Alfred sent.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The wamid the send returned.
    pub wamid: String,
    /// New state.
    pub status: DeliveryStatus,
    /// Unix seconds.
    pub timestamp: i64,
    /// Recipient wa_id, if given.
    pub recipient: Option<String>,
    /// Errors (for `failed`).
    pub errors: Vec<MetaError>,
}

/// An error object as Meta reports it in webhooks.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaError {
    /// Numeric code, e.g. 131047.
    pub code: i64,
    /// Title.
    pub title: String,
    /// `error_data.details`, if any.
    pub details: Option<String>,
}

/// A system notice about a user's identity.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemChange {
    /// Message id.
    pub wamid: String,
    /// `user_changed_number`, `user_changed_user_id`, …
    pub kind: String,
    /// The old identity (the sender of the notice), if given.
    pub old_wa_id: Option<String>,
    /// The new wa_id, if given.
    pub new_wa_id: Option<String>,
    /// The previous user id, if given.
    pub previous_user_id: Option<String>,
    /// The new user id, if given.
    pub user_id: Option<String>,
}

/// Why a body is not a webhook at all (answer 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    /// Not JSON.
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not a WhatsApp webhook object.
    #[error("not a WhatsApp webhook: {0}")]
    NotWebhook(String),
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn ts(v: &Value) -> i64 {
    // Meta sends timestamps as strings of Unix seconds; be lenient with numbers.
    match v.get("timestamp") {
        Some(Value::String(t)) => t.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn meta_error(e: &Value) -> MetaError {
    MetaError {
        code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
        title: s(e, "title").or_else(|| s(e, "message")).unwrap_or_default(),
        details: e.get("error_data").and_then(|d| s(d, "details")),
    }
}

/// Parses a webhook body (already signature-checked).
pub fn parse(body: &[u8]) -> Result<WebhookBatch, InboundError> {
    let root: Value = serde_json::from_slice(body).map_err(|e| InboundError::NotJson(e.to_string()))?;
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| InboundError::NotWebhook("no `entry` array".to_owned()))?;
    let mut batch = WebhookBatch::default();
    for (ei, entry) in entries.iter().enumerate() {
        let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
            batch.skipped.push(format!("entry[{ei}]: no `changes` array"));
            continue;
        };
        for (ci, change) in changes.iter().enumerate() {
            let field = change.get("field").and_then(Value::as_str).unwrap_or("messages");
            let Some(value) = change.get("value") else {
                batch.skipped.push(format!("entry[{ei}].changes[{ci}]: no `value`"));
                continue;
            };
            if field != "messages" {
                batch
                    .skipped
                    .push(format!("entry[{ei}].changes[{ci}]: field `{field}` is not handled"));
                continue;
            }
            parse_value(value, &mut batch, &format!("entry[{ei}].changes[{ci}]"));
        }
    }
    Ok(batch)
}

fn parse_value(value: &Value, batch: &mut WebhookBatch, at: &str) {
    let phone_number_id = value.get("metadata").and_then(|m| s(m, "phone_number_id"));
    let contacts = value
        .get("contacts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(errs) = value.get("errors").and_then(Value::as_array) {
        batch.errors.extend(errs.iter().map(meta_error));
    }
    for (i, m) in value
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(wamid) = s(m, "id") else {
            batch.skipped.push(format!("{at}.messages[{i}]: no `id`"));
            continue;
        };
        let raw_type = s(m, "type").unwrap_or_else(|| "unknown".to_owned());
        if raw_type == "system" {
            let sys = m.get("system").cloned().unwrap_or(Value::Null);
            batch.system.push(SystemChange {
                wamid,
                kind: s(&sys, "type").unwrap_or_else(|| "unknown".to_owned()),
                old_wa_id: s(m, "from"),
                new_wa_id: s(&sys, "wa_id"),
                previous_user_id: s(&sys, "previous_user_id"),
                user_id: s(&sys, "user_id"),
            });
            continue;
        }
        // The sender: `from` may be absent for username-only users; fall back to the
        // single contact of the value (Meta sends one contact per message value).
        let from = s(m, "from");
        let contact = contacts
            .iter()
            .find(|c| from.is_some() && s(c, "wa_id") == from)
            .or(if contacts.len() == 1 { contacts.first() } else { None });
        let wa_id = from.clone().or_else(|| contact.and_then(|c| s(c, "wa_id")));
        let user_id = s(m, "from_user_id").or_else(|| contact.and_then(|c| s(c, "user_id")));
        if wa_id.is_none() && user_id.is_none() {
            batch
                .skipped
                .push(format!("{at}.messages[{i}]: no sender (`from`, `wa_id` or `user_id`)"));
            continue;
        }
        let message = to_engine_message(m, &raw_type, &wamid);
        batch.messages.push(Inbound {
            wamid,
            phone_number_id: phone_number_id.clone(),
            wa_id,
            user_id,
            timestamp: ts(m),
            raw_type,
            context_id: m.get("context").and_then(|c| s(c, "id")),
            message,
        });
    }
    for (i, st) in value
        .get("statuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let (Some(wamid), Some(status)) = (s(st, "id"), s(st, "status")) else {
            batch.skipped.push(format!("{at}.statuses[{i}]: no `id` or `status`"));
            continue;
        };
        let status = match status.as_str() {
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "played" => DeliveryStatus::Played,
            "failed" => DeliveryStatus::Failed,
            other => {
                batch
                    .skipped
                    .push(format!("{at}.statuses[{i}]: unknown status `{other}`"));
                continue;
            }
        };
        batch.statuses.push(StatusUpdate {
            wamid,
            status,
            timestamp: ts(st),
            recipient: s(st, "recipient_id"),
            errors: st
                .get("errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(meta_error)
                .collect(),
        });
    }
}

/// Maps one Meta message object to what the engine sees.
fn to_engine_message(m: &Value, raw_type: &str, wamid: &str) -> InboundMessage {
    let mut extra = Values::new();
    let body = m.get(raw_type).cloned().unwrap_or(Value::Null);
    let mut msg = InboundMessage {
        id: Some(wamid.to_owned()),
        ..Default::default()
    };
    match raw_type {
        "text" => {
            msg.kind = Some(MessageKind::Text);
            msg.text = Some(s(&body, "body").unwrap_or_default());
        }
        "interactive" => {
            let kind = s(&body, "type").unwrap_or_default();
            match body.get(&kind) {
                Some(reply) if kind == "button_reply" || kind == "list_reply" => {
                    msg.kind = Some(MessageKind::Reply);
                    msg.reply_id = s(reply, "id");
                    msg.reply_title = s(reply, "title");
                    if let Some(d) = s(reply, "description") {
                        extra.insert("description".to_owned(), Value::String(d));
                    }
                }
                _ => {
                    msg.kind = Some(MessageKind::Unsupported);
                    extra.insert("type".to_owned(), Value::String(format!("interactive/{kind}")));
                }
            }
        }
        "button" => {
            // A tap on a template's quick-reply button: the payload is the reply id.
            msg.kind = Some(MessageKind::Reply);
            msg.reply_id = s(&body, "payload");
            msg.reply_title = s(&body, "text");
        }
        "image" | "video" | "document" | "audio" | "sticker" => {
            msg.kind = Some(match raw_type {
                "image" => MessageKind::Image,
                "video" => MessageKind::Video,
                "document" => MessageKind::Document,
                "audio" => MessageKind::Audio,
                _ => MessageKind::Sticker,
            });
            msg.text = s(&body, "caption");
            for key in ["id", "mime_type", "filename", "voice", "animated"] {
                if let Some(v) = body.get(key) {
                    let name = if key == "id" { "media_id" } else { key };
                    extra.insert(name.to_owned(), v.clone());
                }
            }
        }
        "location" => {
            msg.kind = Some(MessageKind::Location);
            for key in ["latitude", "longitude", "name", "address"] {
                if let Some(v) = body.get(key) {
                    extra.insert(key.to_owned(), v.clone());
                }
            }
        }
        "contacts" => {
            msg.kind = Some(MessageKind::Contacts);
            let n = m.get("contacts").and_then(Value::as_array).map_or(0, Vec::len);
            extra.insert("count".to_owned(), Value::from(n));
        }
        "reaction" => {
            msg.kind = Some(MessageKind::Reaction);
            extra.insert(
                "message_id".to_owned(),
                body.get("message_id").cloned().unwrap_or(Value::Null),
            );
            // A removed reaction comes without `emoji` (or with an empty one).
            extra.insert("emoji".to_owned(), Value::String(s(&body, "emoji").unwrap_or_default()));
        }
        other => {
            // `unsupported`, `unknown`, and types Meta adds later (order, edit, revoke, …).
            msg.kind = Some(MessageKind::Unsupported);
            extra.insert("type".to_owned(), Value::String(other.to_owned()));
            if let Some(code) = m
                .get("errors")
                .and_then(Value::as_array)
                .and_then(|e| e.first())
                .and_then(|e| e.get("code"))
            {
                extra.insert("error_code".to_owned(), code.clone());
            }
        }
    }
    msg.extra = extra;
    msg
}
