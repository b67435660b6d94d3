//! A household member as the engine knows them, and looking one up by name or address.
//!
//! Its own room so that the data, the compiled flows and the roster can all name a
//! member without depending on each other. Pure lookups: no roster rules (those are
//! [`crate::roster`]) and no I/O.

use chrono_tz::Tz;

use crate::model::Role;

/// A member, compiled. Also the stored form of a roster changed over chat.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Name.
    pub name: String,
    /// E.164 phone, if known.
    pub phone: Option<String>,
    /// WhatsApp business-scoped user id, if known.
    pub user_id: Option<String>,
    /// Role.
    pub role: Role,
    /// Time zone (member's or household's).
    #[serde(with = "tz_name")]
    pub timezone: Tz,
    /// Language (member's or household's).
    pub language: String,
}

/// A time zone stored by its IANA name.
mod tz_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub(super) fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse::<Tz>()
            .map_err(|_| de::Error::custom(format!("unknown time zone `{name}`")))
    }
}

/// A member by name: exact first, then ignoring case.
pub fn find<'a>(members: &'a [Member], name: &str) -> Option<&'a Member> {
    members
        .iter()
        .find(|m| m.name == name)
        .or_else(|| members.iter().find(|m| same_name(&m.name, name)))
}

/// Whether two names are the same ignoring case, in any script ("émile" is "Émile"):
/// flows compare names with `lower`, which is Unicode-aware, so this must be too.
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// A member by phone number (digits only compared) or WhatsApp user id.
pub fn find_by_address<'a>(members: &'a [Member], wa_id: Option<&str>, user_id: Option<&str>) -> Option<&'a Member> {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    if let Some(uid) = user_id
        && let Some(m) = members.iter().find(|m| m.user_id.as_deref() == Some(uid))
    {
        return Some(m);
    }
    let wa = wa_id.map(digits)?;
    members
        .iter()
        .find(|m| m.phone.as_deref().map(digits).as_deref() == Some(wa.as_str()))
}
