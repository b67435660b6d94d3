//! The household's members as they are now, and the rules every roster obeys.
//!
//! Members start in `household.yaml`. Once an admin changes one over chat, the whole
//! roster lives in the household data ([`HouseholdData::members`]) and wins from then
//! on. Everything that looks members up (the engine, the simulator, the worker, the
//! sender, the scheduler) goes through [`effective`], so both sources behave the same.
//! The checker and the runtime share the field rules here, so a roster changed over
//! chat is exactly as valid as one `alfred check` accepts.

use chrono_tz::{TZ_VARIANTS, Tz};

use crate::data::HouseholdData;
use crate::diag::did_you_mean;
use crate::flow::Household;
use crate::member::same_name;
pub use crate::member::{Member, find, find_by_address};
use crate::model::Role;

/// Why a roster, a phone number or a time zone was refused; the message is for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    /// A member name is empty or too long.
    #[error("a member's name must be 1 to 40 characters")]
    BadName,
    /// Two members with the same name.
    #[error("there is already a member called {0}")]
    DuplicateName(String),
    /// Two members with the same phone.
    #[error("{0} already has that phone number")]
    DuplicatePhone(String),
    /// A member nobody can reach.
    #[error("{0} needs a phone number")]
    NoAddress(String),
    /// Not E.164.
    #[error("\"{0}\" is not a phone number with a country code, like +31 6 1234 5678")]
    BadPhone(String),
    /// Not a business-scoped user id.
    #[error("\"{0}\" is not a WhatsApp user id")]
    BadUserId(String),
    /// Not an IANA zone; the second field is a suggestion.
    #[error("there is no time zone \"{0}\" ({hint})", hint = .1.as_ref().map_or_else(|| "use a name like Europe/Amsterdam or America/New_York".to_owned(), |s| format!("did you mean {s}?")))]
    BadTimezone(String, Option<String>),
    /// Not a language code.
    #[error("\"{0}\" is not a language code like en or nl")]
    BadLanguage(String),
    /// Not admin, adult or child.
    #[error("\"{0}\" is not a role: use admin, adult or child")]
    BadRole(String),
    /// The change would leave no admin.
    #[error("{0} is the last admin; make someone else an admin first")]
    LastAdmin(String),
    /// An admin may not remove themselves.
    #[error("you cannot remove yourself")]
    RemoveSelf,
    /// No such member.
    #[error("there is no member called {0}")]
    UnknownMember(String),
}

impl RosterError {
    /// The same reason in Dutch, for a member who reads Dutch (`vars.error` in their language).
    pub fn in_dutch(&self) -> String {
        match self {
            RosterError::BadName => "een naam heeft 1 tot 40 tekens".to_owned(),
            RosterError::DuplicateName(n) => format!("er is al een lid dat {n} heet"),
            RosterError::DuplicatePhone(n) => format!("{n} heeft dat telefoonnummer al"),
            RosterError::NoAddress(n) => format!("{n} heeft een telefoonnummer nodig"),
            RosterError::BadPhone(p) => format!("\"{p}\" is geen telefoonnummer met landcode, zoals +31 6 1234 5678"),
            RosterError::BadUserId(u) => format!("\"{u}\" is geen WhatsApp-gebruikers-id"),
            RosterError::BadTimezone(z, hint) => format!(
                "er is geen tijdzone \"{z}\" ({})",
                hint.as_ref().map_or_else(
                    || "gebruik een naam als Europe/Amsterdam of America/New_York".to_owned(),
                    |s| format!("bedoel je {s}?")
                )
            ),
            RosterError::BadLanguage(l) => format!("\"{l}\" is geen taalcode zoals en of nl"),
            RosterError::BadRole(r) => format!("\"{r}\" is geen rol: kies admin, adult of child"),
            RosterError::LastAdmin(n) => format!("{n} is de laatste admin; maak eerst iemand anders admin"),
            RosterError::RemoveSelf => "je kunt jezelf niet verwijderen".to_owned(),
            RosterError::UnknownMember(n) => format!("er is geen lid dat {n} heet"),
        }
    }
}

/// The members in effect: the stored roster once an admin changed it, else `household.yaml`'s.
pub fn effective<'a>(household: &'a Household, data: &'a HouseholdData) -> &'a [Member] {
    data.members.as_deref().unwrap_or(&household.members)
}

/// Whether `phone` is E.164 as written in files: `+`, then 8 to 15 digits, the first not 0
/// (no country code starts with 0).
pub fn is_e164(phone: &str) -> bool {
    let digits = phone.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len()) && !digits.starts_with('0') && digits.chars().all(|c| c.is_ascii_digit())
}

/// Zeros of the decimal digit blocks phone keyboards type: Arabic-Indic, Persian,
/// Devanagari, Bengali, Thai and full-width digits.
const DIGIT_ZEROS: [u32; 6] = [0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0xFF10];

/// A digit of another script as its ASCII digit; `+` and other characters as they are,
/// a full-width `＋` as `+`.
fn ascii_digit(c: char) -> char {
    if c == '＋' {
        return '+';
    }
    let code = u32::from(c);
    DIGIT_ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&code))
        .and_then(|zero| char::from_digit(code - zero, 10))
        .unwrap_or(c)
}

/// A phone number as people type it ("+31 6 1234 5678", "0031-6-12345678") in E.164.
///
/// A national number ("06 1234 5678") is refused: which country it is in is a guess.
pub fn normalize_phone(text: &str) -> Result<String, RosterError> {
    let t = text.trim();
    // Digits of any common script; spaces (also non-breaking), dashes, dots, slashes
    // and brackets are only grouping.
    let compact: String = t
        .chars()
        .map(ascii_digit)
        .filter(|c| !(c.is_whitespace() || matches!(c, '-' | '‐' | '‑' | '–' | '—' | '.' | '/' | '(' | ')')))
        .collect();
    let e164 = if let Some(rest) = compact.strip_prefix("00") {
        format!("+{rest}")
    } else {
        compact
    };
    if is_e164(&e164) {
        Ok(e164)
    } else {
        Err(RosterError::BadPhone(t.to_owned()))
    }
}

/// Whether `id` is a WhatsApp business-scoped user id (`CC.<id>`).
pub fn is_user_id(id: &str) -> bool {
    id.split_once('.').is_some_and(|(cc, rest)| {
        cc.len() == 2 && cc.chars().all(|c| c.is_ascii_uppercase()) && !rest.is_empty() && rest.len() <= 140
    })
}

/// An IANA time zone, ignoring case ("europe/amsterdam"), or by its city alone ("Amsterdam").
pub fn parse_timezone(text: &str) -> Result<Tz, RosterError> {
    let t = text.trim().replace(' ', "_");
    if let Ok(tz) = t.parse::<Tz>() {
        return Ok(tz);
    }
    let lower = t.to_lowercase();
    if let Some(tz) = TZ_VARIANTS.iter().find(|z| z.name().to_lowercase() == lower) {
        return Ok(*tz);
    }
    // A bare city only when exactly one zone ends in it.
    let mut by_city = TZ_VARIANTS
        .iter()
        .filter(|z| z.name().rsplit('/').next().is_some_and(|c| c.to_lowercase() == lower) && z.name().contains('/'));
    if let (Some(tz), None) = (by_city.next(), by_city.next()) {
        return Ok(*tz);
    }
    let names: Vec<String> = TZ_VARIANTS.iter().map(|z| z.name().to_lowercase()).collect();
    let hint = did_you_mean(&lower, names.iter().map(String::as_str))
        .and_then(|l| TZ_VARIANTS.iter().find(|z| z.name().to_lowercase() == l))
        .map(|z| z.name().to_owned());
    Err(RosterError::BadTimezone(text.trim().to_owned(), hint))
}

/// A role by name, ignoring case.
pub fn parse_role(text: &str) -> Result<Role, RosterError> {
    match text.trim().to_lowercase().as_str() {
        "admin" => Ok(Role::Admin),
        "adult" => Ok(Role::Adult),
        "child" | "kid" => Ok(Role::Child),
        _ => Err(RosterError::BadRole(text.trim().to_owned())),
    }
}

/// Whether `code` looks like a language code: `en`, `nl`, `pt_BR`, `zh-Hant`.
pub fn is_language(code: &str) -> bool {
    let mut parts = code.splitn(2, ['_', '-']);
    let base = parts.next().unwrap_or("");
    (2..=3).contains(&base.len())
        && base.chars().all(|c| c.is_ascii_lowercase())
        && parts
            .next()
            .is_none_or(|r| (2..=8).contains(&r.len()) && r.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Checks a whole roster with the rules `household.yaml` is checked with: names 1 to 40
/// characters and unique (ignoring case), a phone or user id each, E.164 phones that are
/// unique, well-formed user ids and language codes. Time zones are valid by type.
pub fn validate(members: &[Member]) -> Result<(), RosterError> {
    for (i, m) in members.iter().enumerate() {
        let name = m.name.trim();
        if name.is_empty() || name.chars().count() > 40 || name != m.name {
            return Err(RosterError::BadName);
        }
        if members[..i].iter().any(|o| same_name(&o.name, &m.name)) {
            return Err(RosterError::DuplicateName(m.name.clone()));
        }
        match (&m.phone, &m.user_id) {
            (None, None) => return Err(RosterError::NoAddress(m.name.clone())),
            (Some(p), _) if !is_e164(p) => return Err(RosterError::BadPhone(p.clone())),
            (_, Some(u)) if !is_user_id(u) => return Err(RosterError::BadUserId(u.clone())),
            _ => {}
        }
        if let Some(p) = &m.phone
            && let Some(o) = members[..i].iter().find(|o| o.phone.as_deref() == Some(p))
        {
            return Err(RosterError::DuplicatePhone(o.name.clone()));
        }
        if !is_language(&m.language) {
            return Err(RosterError::BadLanguage(m.language.clone()));
        }
    }
    Ok(())
}

/// Validates `next`, a change of `before` made by `actor`, and refuses changes that
/// would leave a household that had an admin without one.
pub fn validate_change(before: &[Member], next: &[Member]) -> Result<(), RosterError> {
    // A phone that is new or changed and already someone's: name that someone.
    for m in next {
        let unchanged = before.iter().any(|b| b.name == m.name && b.phone == m.phone);
        if let (Some(p), false) = (&m.phone, unchanged)
            && let Some(other) = next.iter().find(|o| o.name != m.name && o.phone.as_ref() == Some(p))
        {
            return Err(RosterError::DuplicatePhone(other.name.clone()));
        }
    }
    validate(next)?;
    let had_admin = before.iter().any(|m| m.role == Role::Admin);
    if had_admin && !next.iter().any(|m| m.role == Role::Admin) {
        let last = before.iter().find(|m| m.role == Role::Admin).map(|m| m.name.clone());
        return Err(RosterError::LastAdmin(last.unwrap_or_default()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever is typed, normalising never panics, gives E.164 when it accepts, and
        /// accepts its own result unchanged (so a stored number reads back the same).
        #[test]
        fn phone_normalisation_is_total_and_idempotent(text in "[+＋0-9٠-٩۰-۹０-９ ()./\\-\u{a0}a-z]{0,24}|\\PC{0,30}") {
            if let Ok(p) = normalize_phone(&text) {
                prop_assert!(is_e164(&p), "{p}");
                prop_assert_eq!(normalize_phone(&p), Ok(p.clone()));
            }
        }
    }

    fn member(name: &str, phone: &str, role: Role) -> Member {
        Member {
            name: name.to_owned(),
            phone: Some(phone.to_owned()),
            user_id: None,
            role,
            timezone: chrono_tz::Europe::Amsterdam,
            language: "en".to_owned(),
        }
    }

    #[test]
    fn phones_are_normalised_to_e164_and_national_numbers_are_refused() {
        assert_eq!(normalize_phone("+31 6 1234 5678").unwrap(), "+31612345678");
        assert_eq!(normalize_phone("0031-6-1234.5678").unwrap(), "+31612345678");
        assert_eq!(normalize_phone(" +1 (212) 555-0100 ").unwrap(), "+12125550100");
        assert!(matches!(normalize_phone("06 1234 5678"), Err(RosterError::BadPhone(_))));
        assert!(matches!(normalize_phone("+31 abc"), Err(RosterError::BadPhone(_))));
        assert!(matches!(normalize_phone(""), Err(RosterError::BadPhone(_))));
        // Other scripts' digits and a non-breaking space are what some keyboards type.
        assert_eq!(normalize_phone("+٣١٦١٢٣٤٥٦٧٨").unwrap(), "+31612345678");
        assert_eq!(normalize_phone("＋３１ ６ １２３４ ５６７８").unwrap(), "+31612345678");
        assert_eq!(
            normalize_phone("+31\u{a0}6\u{a0}1234\u{a0}5678").unwrap(),
            "+31612345678"
        );
        assert_eq!(normalize_phone("۰۰۳۱۶۱۲۳۴۵۶۷۸").unwrap(), "+31612345678");
        // No country code starts with 0; 16 digits is one too many; a lone "+" is nothing.
        assert!(matches!(normalize_phone("+0 123456789"), Err(RosterError::BadPhone(_))));
        assert!(matches!(
            normalize_phone("+1234567890123456"),
            Err(RosterError::BadPhone(_))
        ));
        assert!(matches!(normalize_phone("+"), Err(RosterError::BadPhone(_))));
        assert!(matches!(
            normalize_phone("++31612345678"),
            Err(RosterError::BadPhone(_))
        ));
    }

    #[test]
    fn names_are_found_and_kept_unique_ignoring_case_in_any_script() {
        let members = [
            member("Émile", "+33612345678", Role::Admin),
            member("Zoë", "+4512345678", Role::Child),
        ];
        assert_eq!(find(&members, "émile").map(|m| m.name.as_str()), Some("Émile"));
        assert_eq!(find(&members, "ZOË").map(|m| m.name.as_str()), Some("Zoë"));
        let twice = [members[0].clone(), member("ÉMILE", "+33612345679", Role::Adult)];
        assert!(matches!(validate(&twice), Err(RosterError::DuplicateName(_))));
    }

    #[test]
    fn time_zones_ignore_case_accept_a_city_and_suggest_a_fix() {
        assert_eq!(
            parse_timezone("europe/amsterdam").unwrap(),
            chrono_tz::Europe::Amsterdam
        );
        assert_eq!(
            parse_timezone("America/New_York").unwrap(),
            chrono_tz::America::New_York
        );
        assert_eq!(parse_timezone("new york").unwrap(), chrono_tz::America::New_York);
        let err = parse_timezone("Europe/Amsterdm").unwrap_err();
        assert_eq!(
            err,
            RosterError::BadTimezone("Europe/Amsterdm".into(), Some("Europe/Amsterdam".into()))
        );
        assert_eq!(
            err.to_string(),
            "there is no time zone \"Europe/Amsterdm\" (did you mean Europe/Amsterdam?)"
        );
        assert!(matches!(
            parse_timezone("Mars/Base"),
            Err(RosterError::BadTimezone(_, _))
        ));
    }

    #[test]
    fn a_roster_keeps_unique_names_and_phones_and_an_admin() {
        let anna = member("Anna", "+31612345001", Role::Admin);
        let ben = member("Ben", "+31612345002", Role::Adult);
        assert_eq!(validate(&[anna.clone(), ben.clone()]), Ok(()));
        let twin = member("anna", "+31612345009", Role::Adult);
        assert_eq!(
            validate(&[anna.clone(), twin]),
            Err(RosterError::DuplicateName("anna".into()))
        );
        let same_phone = member("Cas", "+31612345002", Role::Adult);
        assert_eq!(
            validate(&[ben.clone(), same_phone]),
            Err(RosterError::DuplicatePhone("Ben".into()))
        );
        let demoted = member("Anna", "+31612345001", Role::Adult);
        assert_eq!(
            validate_change(&[anna, ben.clone()], &[demoted, ben]),
            Err(RosterError::LastAdmin("Anna".into()))
        );
    }

    #[test]
    fn language_codes() {
        assert!(is_language("en") && is_language("pt_BR") && is_language("zh-Hant"));
        assert!(!is_language("English") && !is_language("e") && !is_language(""));
    }
}
