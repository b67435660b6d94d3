//! WhatsApp Cloud API adapter: the pure parts of the contract with Meta.
//!
//! - [`signature`]: `X-Hub-Signature-256` over the raw body bytes.
//! - [`inbound`]: webhook payloads → messages, statuses and system changes.
//! - [`outbound`]: engine messages → Graph API request bodies.
//! - [`errors`]: Graph API error responses → retry / dead-letter decisions.
//!
//! No I/O here: the webhook server and the sender (the service roles) call these.

pub mod errors;
pub mod inbound;
pub mod outbound;
pub mod signature;

#[cfg(test)]
mod tests;
