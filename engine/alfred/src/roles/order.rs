//! Per-sender arrival order with several workers.
//!
//! **The problem.** Workers compete for ingest entries, so two messages of one member
//! can be in flight at once in two workers, and the later one could commit first.
//!
//! **The mechanism: a per-sender sequence number and a bounded hold-back.** When the
//! webhook appends a body to `alfred-ingest`, the queue numbers each sender's messages in
//! the same atomic step (a Lua script on Redis; the same transaction on the SQL queue)
//! and prefixes the entry with the numbers ([`HEADER`]). A worker commits message `n` of a
//! sender only when the database says `n - 1` was handled (`inbound_order`, written in
//! the event's own transaction, see `Store::commit_event`); otherwise it waits a little
//! and tries again. The wait is bounded ([`HOLD_BACK`]): if message `n - 1` never shows
//! up (it was dead-lettered, or the counters were lost with Redis), `n` goes ahead
//! rather than stall the member forever, and the gap is logged and counted.
//!
//! **Why not partitioned streams?** One stream per partition with one owner each needs
//! partition leases and rebalancing between worker processes, and a webhook body can
//! carry several senders. The sequence check keeps one stream, lets any worker take any
//! entry, and costs one indexed read and one upsert in a transaction that already runs.
//!
//! What "order" means: the order in which Meta delivered the messages to the webhook.
//! Meta does not promise to deliver in the order they were sent; its second-resolution
//! timestamps cannot order two messages of one second either, so arrival order is the
//! best a server can honour.
//!
//! Senders are keyed by a hash of their WhatsApp id (or business-scoped user id when
//! Meta sends no phone id), so neither Redis nor the database holds the number for this.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::edges::whatsapp::inbound::Inbound;

/// How long a worker holds a message back waiting for its sender's previous one.
pub const HOLD_BACK: Duration = Duration::from_secs(3);

/// An ingest entry with sequence numbers starts with this, then the numbers (the last
/// number handed out per sender, in the order of [`sender_counts`]) separated by commas,
/// then `\n`, then the webhook body. JSON never starts with `a`, so an unnumbered body
/// (pushed before numbering existed, or by a test) is told apart.
pub const HEADER: &[u8] = b"alfred-seq:";

/// The order key of a sender: a short hash of the WhatsApp id, else of the user id.
pub fn sender_key(wa_id: Option<&str>, user_id: Option<&str>) -> Option<String> {
    let (kind, id) = match (wa_id, user_id) {
        (Some(w), _) if !w.is_empty() => ("wa", w),
        (_, Some(u)) if !u.is_empty() => ("user", u),
        _ => return None,
    };
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(b":");
    h.update(id.as_bytes());
    Some(hex::encode(&h.finalize()[..12]))
}

/// The distinct senders of `messages` in order of first appearance, with how many
/// messages each has. The webhook (to number) and the worker (to read the numbers back)
/// both derive it from the same parse, so they agree by construction.
pub fn sender_counts(messages: &[Inbound]) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = Vec::new();
    for m in messages {
        let Some(key) = sender_key(m.wa_id.as_deref(), m.user_id.as_deref()) else {
            continue;
        };
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => out.push((key, 1)),
        }
    }
    out
}

/// Builds the header for `lasts` (see [`HEADER`]).
pub fn header(lasts: &[i64]) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    let nums: Vec<String> = lasts.iter().map(i64::to_string).collect();
    out.extend_from_slice(nums.join(",").as_bytes());
    out.push(b'\n');
    out
}

/// Splits an ingest entry into its numbers (if it has a well-formed header) and the body.
pub fn split(payload: &[u8]) -> (Option<Vec<i64>>, &[u8]) {
    let Some(rest) = payload.strip_prefix(HEADER) else {
        return (None, payload);
    };
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        return (None, payload);
    };
    let (nums, body) = (&rest[..nl], &rest[nl + 1..]);
    let parsed: Option<Vec<i64>> = std::str::from_utf8(nums).ok().and_then(|s| {
        if s.is_empty() {
            Some(Vec::new())
        } else {
            s.split(',').map(|n| n.parse().ok()).collect()
        }
    });
    (parsed, body)
}

/// The (sender key, sequence number) of each message, given the header's numbers.
///
/// A sender with `c` messages in the body and last number `L` had `L-c+1 ..= L` handed
/// out, in body order. `None` for a message without an identity, or when the numbers do
/// not fit the body (then the entry is handled unordered rather than refused).
pub fn assign(messages: &[Inbound], lasts: Option<&[i64]>) -> Vec<Option<(String, i64)>> {
    let counts = sender_counts(messages);
    let Some(lasts) = lasts.filter(|l| l.len() == counts.len()) else {
        return vec![None; messages.len()];
    };
    let mut next: Vec<(String, i64)> = counts
        .iter()
        .zip(lasts)
        .map(|((k, c), last)| (k.clone(), last - i64::from(*c) + 1))
        .collect();
    messages
        .iter()
        .map(|m| {
            let key = sender_key(m.wa_id.as_deref(), m.user_id.as_deref())?;
            let slot = next.iter_mut().find(|(k, _)| *k == key)?;
            let seq = slot.1;
            slot.1 += 1;
            Some((key, seq))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use alfred_core::event::InboundMessage;

    use super::*;

    fn msg(wa: &str) -> Inbound {
        Inbound {
            wamid: format!("wamid.{wa}"),
            phone_number_id: None,
            wa_id: Some(wa.to_owned()),
            user_id: None,
            timestamp: 0,
            raw_type: "text".to_owned(),
            context_id: None,
            message: InboundMessage::text("hi"),
        }
    }

    #[test]
    fn keys_hide_the_number_and_separate_id_kinds() {
        let k = sender_key(Some("31612345001"), None).expect("key");
        assert!(!k.contains("31612345001"));
        assert_eq!(k.len(), 24);
        assert_ne!(sender_key(None, Some("31612345001")), Some(k.clone()));
        assert_eq!(sender_key(Some(""), Some("US.1")), sender_key(None, Some("US.1")));
        assert_eq!(sender_key(None, None), None);
    }

    #[test]
    fn header_round_trips_and_plain_bodies_pass_through() {
        let mut payload = header(&[3, 17]);
        payload.extend_from_slice(b"{\"x\":1}");
        assert_eq!(split(&payload), (Some(vec![3, 17]), &b"{\"x\":1}"[..]));
        assert_eq!(split(b"{\"x\":1}"), (None, &b"{\"x\":1}"[..]));
        let mut empty = header(&[]);
        empty.extend_from_slice(b"{}");
        assert_eq!(split(&empty), (Some(vec![]), &b"{}"[..]));
        // A header without its newline, or with garbage numbers, is not a header.
        assert_eq!(split(b"alfred-seq:1,2").0, None);
        assert_eq!(split(b"alfred-seq:x\n{}").0, None);
    }

    #[test]
    fn numbers_are_assigned_per_sender_in_body_order() {
        let msgs = [msg("1"), msg("2"), msg("1"), msg("1")];
        let counts = sender_counts(&msgs);
        assert_eq!(counts.iter().map(|(_, c)| *c).collect::<Vec<_>>(), [3, 1]);
        // Sender 1 was handed 8, 9, 10; sender 2 was handed 5.
        let got = assign(&msgs, Some(&[10, 5]));
        let seqs: Vec<i64> = got.iter().map(|o| o.as_ref().expect("numbered").1).collect();
        assert_eq!(seqs, [8, 5, 9, 10]);
        assert_eq!(got[0].as_ref().map(|o| &o.0), got[2].as_ref().map(|o| &o.0));
        // Numbers that do not fit the body are ignored, not trusted.
        assert_eq!(assign(&msgs, Some(&[10])), vec![None; 4]);
        assert_eq!(assign(&msgs, None), vec![None; 4]);
    }
}
