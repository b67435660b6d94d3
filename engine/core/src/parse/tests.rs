use super::*;
use chrono_tz::{America::New_York, Europe::Amsterdam};
use proptest::prelude::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test instant")
        .with_timezone(&Utc)
}
fn naive(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test naive")
}
fn ams(text: &str, now: &str) -> Result<DateTime<Utc>, ParseError> {
    parse_datetime(text, utc(now), Amsterdam)
}
/// Items as "qty×name, ..." so each case fits on one line.
fn show(text: &str) -> String {
    let items: Vec<String> = parse_items(text)
        .iter()
        .map(|i| format!("{}×{}", i.qty, i.name))
        .collect();
    items.join(", ")
}

#[test]
fn normalize_examples() {
    assert_eq!(normalize("  Dóne, DISHES!! 🎉"), "done dishes");
    assert_eq!(normalize("Crème  Brûlée\n\tNOW"), "creme brulee now");
    assert_eq!(normalize("ﬁve²"), "five2");
    assert_eq!(normalize("🎉!!"), "");
    assert_eq!(normalize(""), "");
}

#[test]
fn item_key_examples() {
    #[rustfmt::skip]
    let cases = [
        ("Bananas", "banana"), ("banana", "banana"), ("BANANA!", "banana"), ("eggs", "egg"),
        ("egg", "egg"), ("glass", "glass"), ("glasses", "glass"), ("Dishes", "dish"),
        ("boxes", "box"), ("berries", "berry"), ("berry", "berry"), ("cookies", "cooky"),
        ("cookie", "cooky"), ("pies", "pie"), ("tomatoes", "tomato"), ("cheeses", "cheese"),
        ("bus", "bus"), ("Green Apples", "green apple"),
    ];
    for (text, key) in cases {
        assert_eq!(item_key(text), key, "{text}");
    }
}

#[test]
fn items_basic_list_and_merge() {
    let item = |name: &str, qty| ParsedItem { name: name.into(), qty };
    assert_eq!(
        parse_items("milk, eggs and 2 bread"),
        vec![item("milk", 1), item("eggs", 1), item("bread", 2)]
    );
    assert_eq!(parse_items("Bananas, banana and 2 BANANAS"), vec![item("Bananas", 4)]);
}

#[test]
fn items_table() {
    let cases = [
        (
            "Kaas; melk en 3 appels\nBrot und Butter & jam + tea",
            "1×Kaas, 1×melk, 3×appels, 1×Brot, 1×Butter, 1×jam, 1×tea",
        ),
        ("2x eggs", "2×eggs"),
        ("2 x eggs", "2×eggs"),
        ("eggs x 3", "3×eggs"),
        ("eggs x3", "3×eggs"),
        ("a loaf of bread", "1×loaf of bread"),
        ("an apple", "1×apple"),
        ("three lemons, ten eggs", "3×lemons, 10×eggs"),
        ("twee kiwi's, zwei Zitronen", "2×kiwi's, 2×Zitronen"),
        ("5000 eggs", "999×eggs"),
        ("99999999999999999999999 eggs", "999×eggs"),
        ("600 eggs, 600 eggs", "999×eggs"),
        ("0 eggs", "1×eggs"),
        ("500 g flour, 2kg potatoes", "1×500 g flour, 1×2kg potatoes"),
        ("2 xl shirts", "2×xl shirts"),
        ("2 more eggs", "2×eggs"),
        ("milk 🥛, 🍌 bananas!!", "1×milk, 1×bananas"),
        ("milk pls", "1×milk"),
        ("please milk and eggs please!", "1×milk, 1×eggs"),
        ("milk, please", "1×milk"),
        ("some milk, more Eggs.", "1×milk, 1×Eggs"),
        ("milk, eggs, and bread", "1×milk, 1×eggs, 1×bread"),
        (
            "- milk\n• eggs\n1. bread\n2) 3 apples",
            "1×milk, 1×eggs, 1×bread, 3×apples",
        ),
        ("  Peanut   Butter  ", "1×Peanut Butter"),
        (",,; \n and & 🎉 !!", ""),
        ("", ""),
        ("more", "1×more"),
    ];
    for (text, want) in cases {
        assert_eq!(show(text), want, "{text:?}");
    }
}

#[test]
fn items_capped_at_fifty() {
    let text: Vec<String> = (0..80).map(|i| format!("thing{i}")).collect();
    let items = parse_items(&text.join(", "));
    assert_eq!(items.len(), 50);
    assert_eq!(items.last().map(|i| i.name.as_str()), Some("thing49"));
}

#[test]
fn duration_forms() {
    let (s, m, h) = (Duration::seconds, Duration::minutes, Duration::hours);
    #[rustfmt::skip]
    let cases = [
        ("90s", s(90)), ("20m", m(20)), ("20 min", m(20)), ("2h", h(2)), ("1h30m", m(90)),
        ("1h 30m", m(90)), ("1h30", m(90)), ("2 hours", h(2)), ("3d", h(72)), ("1w", h(168)),
        ("45 minutes", m(45)), ("1.5h", m(90)), ("1,5 uur", m(90)), ("an hour", h(1)),
        ("1 hour and 30 minutes", m(90)), ("20 Minuten", m(20)), ("0s", s(0)),
        ("366d", h(366 * 24)), ("0.001s", Duration::milliseconds(1)), ("20 min.", m(20)),
    ];
    for (text, want) in cases {
        assert_eq!(parse_duration(text), Ok(want), "{text}");
    }
}

#[test]
fn duration_errors() {
    assert_eq!(parse_duration("  "), Err(ParseError::EmptyDuration));
    assert_eq!(parse_duration("-5m"), Err(ParseError::NegativeDuration("-5m".into())));
    for long in ["367d", "53w", "99999999999999999999999999h"] {
        assert_eq!(parse_duration(long), Err(ParseError::DurationTooLong(long.into())));
    }
    for bad in ["20", "abc", "5 parsecs", "1h30x", "h", "1..5h", "2 20m", "1d30"] {
        assert_eq!(parse_duration(bad), Err(ParseError::BadDuration(bad.into())), "{bad}");
    }
    let msg = ParseError::BadDuration("x".into()).to_string();
    assert!(msg.contains("1h30m") && msg.contains("90s"), "{msg}");
}

#[test]
fn number_forms() {
    let cases = [("3", 3.0), ("3.5", 3.5), ("3,5", 3.5), (" 12 ", 12.0), ("-2", -2.0)];
    for (text, want) in cases {
        assert_eq!(parse_number(text), Some(want), "{text}");
    }
    for bad in ["", "NaN", "inf", "1e5", "3.5.1", "abc", "1 2", "٣", &"9".repeat(400)] {
        assert_eq!(parse_number(bad), None, "{bad}");
    }
}

#[test]
fn resolve_local_dst() {
    let cases = [
        // Amsterdam springs 02:00 CET -> 03:00 CEST at 01:00 UTC.
        ("2026-03-29 02:30", Amsterdam, "2026-03-29T01:00:00Z"),
        ("2026-03-29 02:00", Amsterdam, "2026-03-29T01:00:00Z"),
        ("2026-03-29 03:00", Amsterdam, "2026-03-29T01:00:00Z"),
        ("2026-03-29 01:59", Amsterdam, "2026-03-29T00:59:00Z"),
        // New York springs 02:00 EST -> 03:00 EDT at 07:00 UTC.
        ("2026-03-08 02:30", New_York, "2026-03-08T07:00:00Z"),
        // Amsterdam falls back 03:00 CEST -> 02:00 CET: 02:30 happens twice, take the first.
        ("2026-10-25 02:30", Amsterdam, "2026-10-25T00:30:00Z"),
        ("2026-11-01 01:30", New_York, "2026-11-01T05:30:00Z"),
        ("2026-06-10 14:00", Amsterdam, "2026-06-10T12:00:00Z"),
        // Samoa skipped all of 2011-12-30: the first instant after is 31 Dec 00:00 (+14).
        ("2011-12-30 12:00", Tz::Pacific__Apia, "2011-12-30T10:00:00Z"),
    ];
    for (local, tz, want) in cases {
        assert_eq!(resolve_local(naive(local), tz), utc(want), "{local} {tz}");
    }
}

#[test]
fn datetime_table() {
    // 2026-06-10 is a Wednesday; Amsterdam is UTC+2 then, so 12:00Z is 14:00 local.
    let wed = "2026-06-10T12:00:00Z";
    let cases = [
        ("at 6", wed, "2026-06-10T16:00:00Z"),
        ("at 6", "2026-06-10T17:00:00Z", "2026-06-11T04:00:00Z"),
        ("6", "2026-06-10T02:00:00Z", "2026-06-10T04:00:00Z"),
        ("at 12", wed, "2026-06-10T22:00:00Z"),
        ("18:00", wed, "2026-06-10T16:00:00Z"),
        // One rule for "at 6" and "9:00" (issue 12): the next of morning and evening.
        ("9:00", wed, "2026-06-10T19:00:00Z"),
        ("09:00", wed, "2026-06-11T07:00:00Z"),
        ("6pm", wed, "2026-06-10T16:00:00Z"),
        ("6:30 pm", wed, "2026-06-10T16:30:00Z"),
        ("At 6:30 P.M.", wed, "2026-06-10T16:30:00Z"),
        ("12am", wed, "2026-06-10T22:00:00Z"),
        ("12pm", wed, "2026-06-11T10:00:00Z"),
        ("om 18.30 uur", wed, "2026-06-10T16:30:00Z"),
        ("midnight", wed, "2026-06-10T22:00:00Z"),
        ("now", wed, wed),
        ("tomorrow 18:00", wed, "2026-06-11T16:00:00Z"),
        ("tomorrow at 7", wed, "2026-06-11T05:00:00Z"),
        ("tomorrow at 3", wed, "2026-06-11T13:00:00Z"),
        ("Tomorrow", wed, "2026-06-11T07:00:00Z"),
        ("morgen", wed, "2026-06-11T07:00:00Z"),
        ("morgen 8:15", wed, "2026-06-11T06:15:00Z"),
        ("18:00 tomorrow", wed, "2026-06-11T16:00:00Z"),
        ("tomorrow morning", wed, "2026-06-11T07:00:00Z"),
        ("day after tomorrow 10:00", wed, "2026-06-12T08:00:00Z"),
        ("today 9pm", wed, "2026-06-10T19:00:00Z"),
        ("today at 6", wed, "2026-06-10T16:00:00Z"),
        ("tonight", wed, "2026-06-10T18:00:00Z"),
        ("tonight at 11", wed, "2026-06-10T21:00:00Z"),
        ("tonight 9:30", wed, "2026-06-10T19:30:00Z"),
        ("tonight at 1", wed, "2026-06-10T23:00:00Z"),
        ("tonight 12", wed, "2026-06-10T22:00:00Z"),
        ("monday 7:00", wed, "2026-06-15T05:00:00Z"),
        ("on Friday at 5pm", wed, "2026-06-12T15:00:00Z"),
        ("vrijdag", wed, "2026-06-12T07:00:00Z"),
        // Today's weekday counts only while the time is still ahead.
        ("wednesday 18:00", wed, "2026-06-10T16:00:00Z"),
        ("wednesday 10:00", wed, "2026-06-17T08:00:00Z"),
        ("in 20 minutes", wed, "2026-06-10T12:20:00Z"),
        ("in 2 hours", wed, "2026-06-10T14:00:00Z"),
        ("In 3 days", wed, "2026-06-13T12:00:00Z"),
        ("over 1 uur", wed, "2026-06-10T13:00:00Z"),
        ("2026-12-01 10:00", wed, "2026-12-01T09:00:00Z"),
        ("2026-12-01T10:00", wed, "2026-12-01T09:00:00Z"),
        ("2026-12-01T10:00Z", wed, "2026-12-01T10:00:00Z"),
        ("on 2026-12-01 at 18:30", wed, "2026-12-01T17:30:00Z"),
        ("2026-12-01", wed, "2026-12-01T08:00:00Z"),
        // Explicit ISO dates may lie in the past.
        ("2020-01-01 10:00", wed, "2020-01-01T09:00:00Z"),
        // DST: tomorrow 02:30 falls in the spring gap / the fall-back overlap.
        ("tomorrow 02:30", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"),
        ("tomorrow 02:30", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z"),
    ];
    for (text, now, want) in cases {
        assert_eq!(ams(text, now), Ok(utc(want)), "{text} at {now}");
    }
    let ny = |text, now| parse_datetime(text, utc(now), New_York);
    assert_eq!(
        ny("tomorrow 02:30", "2026-03-07T17:00:00Z"),
        Ok(utc("2026-03-08T07:00:00Z"))
    );
    assert_eq!(ny("tomorrow", wed), Ok(utc("2026-06-11T13:00:00Z")));
}

#[test]
fn datetime_errors() {
    let wed = "2026-06-10T12:00:00Z";
    use ParseError::*;
    let cases = [
        ("today", wed, MissingTime("today".into())),
        ("today 9am", wed, InPast("today 9am".into())),
        ("tonight", "2026-06-10T19:00:00Z", InPast("tonight".into())),
        ("25:00", wed, BadTimeOfDay("25:00".into())),
        ("13pm", wed, BadTimeOfDay("13pm".into())),
        ("10:61", wed, BadTimeOfDay("10:61".into())),
        ("2026-02-30 10:00", wed, BadDate("2026-02-30 10:00".into())),
        ("next blue moon", wed, BadDateTime("next blue moon".into())),
        ("monday friday", wed, BadDateTime("monday friday".into())),
        ("in soon", wed, BadDuration("soon".into())),
        ("   ", wed, EmptyDateTime),
    ];
    for (text, now, want) in cases {
        assert_eq!(ams(text, now), Err(want), "{text}");
    }
    let msg = BadDateTime("x".into()).to_string();
    assert!(msg.contains("tomorrow 9am") && msg.contains("in 2 hours"), "{msg}");
}

#[rustfmt::skip]
const ZONES: [Tz; 5] = [Amsterdam, New_York, Tz::UTC, Tz::Australia__Lord_Howe, Tz::Pacific__Apia];

/// Phrases built from the relative grammar: day word, optional "at", a clock or "in ...".
#[rustfmt::skip]
fn phrase() -> impl Strategy<Value = String> {
    let day = prop::sample::select(vec!["", "today ", "tonight ", "tomorrow ", "morgen ", "on friday ", "next sun "]);
    let at = prop::sample::select(vec!["", "at "]);
    let clock = prop_oneof![
        (0u32..30, 0u32..70).prop_map(|(h, m)| format!("{h}:{m:02}")),
        (0u32..14, prop::sample::select(vec!["am", "pm", " pm", ""])).prop_map(|(h, s)| format!("{h}{s}")),
        prop::sample::select(vec!["", "noon", "midnight", "morning"]).prop_map(str::to_string),
        (0u32..5000, prop::sample::select(vec!["m", " minutes", "h", "d"])).prop_map(|(n, u)| format!("in {n}{u}")),
    ];
    (day, at, clock).prop_map(|(d, a, c)| format!("{d}{a}{c}"))
}

fn assert_clean(items: &[ParsedItem]) -> Result<(), TestCaseError> {
    prop_assert!(items.len() <= MAX_ITEMS);
    for it in items {
        prop_assert!((1..=MAX_QTY).contains(&it.qty));
        prop_assert!(!it.name.is_empty());
        prop_assert_eq!(it.name.trim(), it.name.as_str());
    }
    Ok(())
}

#[test]
fn extreme_instants_do_not_panic() {
    let phrases = [
        "at 6",
        "tomorrow",
        "monday 9:00",
        "tonight",
        "in 3d",
        "18:00",
        "9999-12-31 23:59",
    ];
    for now in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
        for text in phrases {
            for tz in ZONES {
                if let Ok(when) = parse_datetime(text, now, tz) {
                    assert!(when >= now || text.starts_with("9999"), "{text}");
                }
            }
        }
    }
    for naive in [NaiveDateTime::MIN, NaiveDateTime::MAX] {
        for tz in ZONES {
            let _ = resolve_local(naive, tz);
        }
    }
}

#[test]
fn fillers_are_dropped_at_the_edges_only() {
    let strip = |t: &str| strip_fillers(&normalize(t));
    assert_eq!(strip("Shopping list pls!"), Some("shopping list".into()));
    assert_eq!(strip("hey Alfred, my chores please 🙏"), Some("my chores".into()));
    assert_eq!(strip("lijst graag, dank je wel"), Some("lijst".into()));
    assert_eq!(strip("thank you"), None, "one filler alone stays");
    assert_eq!(strip("Hi Alfred!"), Some("hi".into()), "the first word stays");
    assert_eq!(strip("thank you alfred"), Some("thank you".into()));
    assert_eq!(strip("list"), None, "nothing to drop");
    // Inside the message a filler is a real word.
    assert_eq!(strip("please list please stop"), Some("list please stop".into()));
}

#[test]
fn one_typo_per_long_word() {
    for (typed, keyword) in [
        ("shoping list", "shopping list"),  // a dropped letter
        ("my remnders", "my reminders"),    // a dropped letter
        ("my chroes", "my chores"),         // swapped neighbours
        ("shopoing list", "shopping list"), // a changed letter
        ("grocceries", "groceries"),        // an added letter
        ("my chore", "my chores"),          // a missing plural s
    ] {
        assert!(typo_match(typed, keyword), "{typed} / {keyword}");
    }
    assert!(
        !typo_match("shopping lisst", "shopping list"),
        "`list` is short: no typo there"
    );
    assert!(!typo_match("list", "list"), "equal is exact, not a typo");
    assert!(!typo_match("lost", "list"), "short words never take a typo");
    assert!(!typo_match("shpoing list", "shopping list"), "two typos in one word");
    assert!(
        !typo_match("shopping", "shopping list"),
        "words are compared one by one"
    );
    assert!(one_edit("ab", "ba") && one_edit("abc", "ab") && one_edit("ab", "abc") && !one_edit("abc", "abc"));
    assert!(!one_edit("abcd", "badc"));
}

proptest! {
    #[test]
    fn resolve_local_never_panics(secs in -8_000_000_000_000i64..8_000_000_000_000, zone in 0usize..5) {
        if let Some(naive) = DateTime::<Utc>::from_timestamp(secs, 0).map(|d| d.naive_utc()) {
            let _ = resolve_local(naive, ZONES[zone]);
        }
    }

    #[test]
    fn items_never_panic_and_are_clean(text in any::<String>()) {
        assert_clean(&parse_items(&text))?;
    }

    #[test]
    fn items_from_list_like_text(
        words in prop::collection::vec("[a-zA-Z0-9 xX🍌.,!&+-]{0,12}", 0..80),
        sep in prop::sample::select(vec![", ", " and ", "\n", " & ", ";"]),
    ) {
        assert_clean(&parse_items(&words.join(sep)))?;
    }

    #[test]
    fn a_keyword_is_never_a_typo_of_itself(words in prop::collection::vec("[a-z]{1,9}", 1..4)) {
        let keyword = words.join(" ");
        prop_assert!(!typo_match(&keyword, &keyword));
    }

    #[test]
    fn one_changed_letter_in_a_long_word_is_a_typo(word in "[a-z]{5,10}", at in 0usize..10, c in "[a-z]") {
        let at = at % word.len();
        let typed: String = word.chars().enumerate().map(|(i, x)| if i == at { c.chars().next().unwrap_or(x) } else { x }).collect();
        prop_assert_eq!(typo_match(&typed, &word), typed != word);
    }

    #[test]
    fn strip_fillers_never_grows_and_is_clean(text in any::<String>()) {
        let n = normalize(&text);
        if let Some(s) = strip_fillers(&n) {
            prop_assert!(!s.is_empty() && s.len() < n.len() && n.contains(&s));
            prop_assert_eq!(normalize(&s), s);
        }
    }

    #[test]
    fn normalize_is_idempotent(text in any::<String>()) {
        let once = normalize(&text);
        prop_assert_eq!(normalize(&once), once);
    }

    #[test]
    fn duration_round_trips(h in 0i64..=8000, m in 0i64..60, space in any::<bool>()) {
        let text = if space { format!("{h}h {m}m") } else { format!("{h}h{m}m") };
        prop_assert_eq!(parse_duration(&text), Ok(Duration::hours(h) + Duration::minutes(m)));
    }

    #[test]
    fn duration_is_bounded(text in any::<String>()) {
        if let Ok(d) = parse_duration(&text) {
            prop_assert!(d >= Duration::zero() && d <= Duration::days(366));
        }
    }

    #[test]
    fn datetime_never_panics(text in any::<String>(), secs in -5_000_000_000i64..5_000_000_000, zone in 0usize..5) {
        let now = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
        let _ = parse_datetime(&text, now, ZONES[zone]);
    }

    #[test]
    fn relative_phrases_are_never_past(text in phrase(), secs in 0i64..4_000_000_000, zone in 0usize..5) {
        let now = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
        if let Ok(when) = parse_datetime(&text, now, ZONES[zone]) {
            prop_assert!(when >= now, "{} at {} gave {}", text, now, when);
        }
    }
}

/// Everyday phrases (issue 12, item 9), Wednesday 10 June 2026 14:00 in Amsterdam.
#[test]
fn everyday_time_phrases() {
    let wed = "2026-06-10T12:00:00Z";
    let cases = [
        // One rule for "at 6" and "at 6.30": the next of the morning and evening reading.
        ("at 6", wed, "2026-06-10T16:00:00Z"),
        ("at 6.30", wed, "2026-06-10T16:30:00Z"),
        ("at 6:30", "2026-06-10T03:00:00Z", "2026-06-10T04:30:00Z"),
        ("9:00", wed, "2026-06-10T19:00:00Z"),
        ("at 06:30", wed, "2026-06-11T04:30:00Z"),
        ("half past 6", wed, "2026-06-10T16:30:00Z"),
        ("quarter to 8", wed, "2026-06-10T17:45:00Z"),
        ("a quarter past seven", wed, "2026-06-10T17:15:00Z"),
        ("kwart over 8", wed, "2026-06-10T18:15:00Z"),
        ("kwart voor 8", wed, "2026-06-10T17:45:00Z"),
        ("om half 7", wed, "2026-06-10T16:30:00Z"),
        ("morgen om half 8", wed, "2026-06-11T05:30:00Z"),
        ("tien over half 7", wed, "2026-06-10T16:40:00Z"),
        ("5 voor 9", wed, "2026-06-10T18:55:00Z"),
        ("18u30", wed, "2026-06-10T16:30:00Z"),
        ("om 18u", wed, "2026-06-10T16:00:00Z"),
        ("viertel nach 8", wed, "2026-06-10T18:15:00Z"),
        ("halb 7", wed, "2026-06-10T16:30:00Z"),
        ("in half an hour", wed, "2026-06-10T12:30:00Z"),
        ("over een half uur", wed, "2026-06-10T12:30:00Z"),
        ("in 1,5 uur", wed, "2026-06-10T13:30:00Z"),
        ("in 1.5 hours", wed, "2026-06-10T13:30:00Z"),
        ("over anderhalf uur", wed, "2026-06-10T13:30:00Z"),
        ("over een kwartier", wed, "2026-06-10T12:15:00Z"),
        ("over een kwartiertje", wed, "2026-06-10T12:15:00Z"),
        ("over drie kwartier", wed, "2026-06-10T12:45:00Z"),
        ("in a quarter of an hour", wed, "2026-06-10T12:15:00Z"),
        ("in einer Viertelstunde", wed, "2026-06-10T12:15:00Z"),
        ("in einer halben Stunde", wed, "2026-06-10T12:30:00Z"),
        ("tomorrow, 8pm", wed, "2026-06-11T18:00:00Z"),
        // Named days: the next such day, at 09:00 unless a time is given.
        ("31 march", wed, "2027-03-31T07:00:00Z"),
        ("march 31st at 10", wed, "2027-03-31T08:00:00Z"),
        ("12 june", wed, "2026-06-12T07:00:00Z"),
        ("on 12 june at 5pm", wed, "2026-06-12T15:00:00Z"),
        ("15 juni om 8 uur", wed, "2026-06-15T06:00:00Z"),
        ("15 maart", wed, "2027-03-15T08:00:00Z"),
        ("am 15. Juni", wed, "2026-06-15T07:00:00Z"),
        ("on the 15th", wed, "2026-06-15T07:00:00Z"),
        ("the 1st at 8", wed, "2026-07-01T06:00:00Z"),
        ("on the 31st", wed, "2026-07-31T07:00:00Z"),
        ("op de 15e", wed, "2026-06-15T07:00:00Z"),
        ("10 june", wed, "2027-06-10T07:00:00Z"),
        // "next week" is its Monday.
        ("next week", wed, "2026-06-15T07:00:00Z"),
        ("volgende week om 10:00", wed, "2026-06-15T08:00:00Z"),
        ("nächste Woche", wed, "2026-06-15T07:00:00Z"),
    ];
    for (text, now, want) in cases {
        assert_eq!(ams(text, now), Ok(utc(want)), "{text} at {now}");
    }
    assert_eq!(ams("31 february", wed), Err(ParseError::BadDate("31 february".into())));
    assert!(ams("half past 25", wed).is_err());
}

#[test]
fn a_time_said_last_is_split_off() {
    let now = utc("2026-06-10T12:00:00Z");
    let split = |t: &str| split_trailing_time(t, now, Amsterdam);
    let pair = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
    assert_eq!(split("call grandma at 7pm"), pair("call grandma", "at 7pm"));
    assert_eq!(
        split("call the bank tomorrow at 8"),
        pair("call the bank", "tomorrow at 8")
    );
    assert_eq!(
        split("feed the cat in half an hour"),
        pair("feed the cat", "in half an hour")
    );
    assert_eq!(
        split("oma bellen morgen om half 8"),
        pair("oma bellen", "morgen om half 8")
    );
    assert_eq!(split("pay rent on the 1st"), pair("pay rent", "on the 1st"));
    assert_eq!(split("set the table for 6"), None);
    assert_eq!(split("call grandma at home"), None);
    assert_eq!(split("buy 2 eggs"), None);
}

/// The local wall-clock time of `u` in `tz`.
fn local(u: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    u.with_timezone(&tz).naive_local()
}

/// Spoken forms of h:m for an hour 1..=12, with what they mean: (text, hour, minute).
fn spoken(h: u32, form: usize) -> (String, u32, u32) {
    let prev = if h == 1 { 12 } else { h - 1 };
    match form {
        0 => (format!("half past {h}"), h, 30),
        1 => (format!("quarter past {h}"), h, 15),
        2 => (format!("quarter to {h}"), prev, 45),
        3 => (format!("kwart over {h}"), h, 15),
        4 => (format!("kwart voor {h}"), prev, 45),
        5 => (format!("half {h}"), prev, 30),
        6 => (format!("{h}.30"), h, 30),
        7 => (format!("{h}u15"), h, 15),
        8 => (format!("viertel nach {h}"), h, 15),
        9 => (format!("halb {h}"), prev, 30),
        _ => (format!("om {h} uur"), h, 0),
    }
}

proptest! {
    /// Every spoken form, alone or after "at"/"om": in the future, within a day, and at
    /// the time it names (morning or evening reading).
    #[test]
    fn spoken_times_are_ahead_and_at_their_time(
        h in 1u32..=12, form in 0usize..11, at in any::<bool>(),
        secs in 0i64..4_000_000_000, zone in 0usize..5,
    ) {
        let tz = ZONES[zone];
        let now = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
        let (text, hh, mm) = spoken(h, form);
        let text = if at { format!("at {text}") } else { text };
        let when = parse_datetime(&text, now, tz);
        prop_assert!(when.is_ok(), "{} at {} in {}: {:?}", text, now, tz, when);
        let when = when.unwrap_or(now);
        prop_assert!(when > now && when - now <= Duration::hours(26), "{} at {} gave {}", text, now, when);
        let t = local(when, tz);
        use chrono::Timelike;
        // A DST gap moves a time to the gap's end; otherwise it is the time said.
        if resolve_local(t, tz) == when && t.minute() == mm {
            prop_assert_eq!(t.hour() % 12, hh % 12, "{} gave {}", text, t);
        }
    }

    /// Day-month dates in three languages: the next such date at its time, never past.
    #[test]
    fn named_dates_round_trip(
        d in 1u32..=28, m in 1u32..=12, lang in 0usize..3, hour in 7u32..=12,
        secs in 0i64..4_000_000_000, zone in 0usize..5,
    ) {
        const EN: [&str; 12] = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];
        const NL: [&str; 12] = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november", "december"];
        const DE: [&str; 12] = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"];
        let tz = ZONES[zone];
        let now = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
        let i = (m - 1) as usize;
        let text = match lang {
            0 => format!("{d} {} at {hour}:00", EN[i]),
            1 => format!("{d} {} om {hour}:00", NL[i]),
            _ => format!("am {d}. {} um {hour}:00", DE[i]),
        };
        let when = parse_datetime(&text, now, tz);
        prop_assert!(when.is_ok(), "{}: {:?}", text, when);
        let when = when.unwrap_or(now);
        prop_assert!(when > now && when - now <= Duration::days(367), "{} at {} gave {}", text, now, when);
        use chrono::Datelike;
        let t = local(when, tz);
        prop_assert_eq!((t.day(), t.month()), (d, m), "{}", text);
    }

    /// "on the 15th" / "op de 15e": the next month that has that day, at 09:00.
    #[test]
    fn day_of_month_is_the_next_one(d in 1u32..=31, dutch in any::<bool>(), secs in 0i64..4_000_000_000, zone in 0usize..5) {
        let tz = ZONES[zone];
        let now = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
        let text = if dutch { format!("op de {d}e") } else { format!("on the {d}th") };
        let when = parse_datetime(&text, now, tz);
        prop_assert!(when.is_ok(), "{}: {:?}", text, when);
        let when = when.unwrap_or(now);
        use chrono::Datelike;
        prop_assert!(when > now && when - now <= Duration::days(63), "{} at {} gave {}", text, now, when);
        prop_assert_eq!(local(when, tz).day(), d);
    }

    /// "in half an hour", "in 1,5 uur", "over anderhalf uur": exactly that long from now.
    #[test]
    fn spoken_durations_are_exact(n in 0u32..100, frac in 0u32..10, form in 0usize..4, secs in 0i64..4_000_000_000) {
        let now = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
        let (text, minutes) = match form {
            0 => (format!("in {n},{frac} uur"), i64::from(n) * 60 + i64::from(frac) * 6),
            1 => (format!("in {n}.{frac} hours"), i64::from(n) * 60 + i64::from(frac) * 6),
            2 => ("in half an hour".to_owned(), 30),
            _ => ("over anderhalf uur".to_owned(), 90),
        };
        prop_assert_eq!(parse_datetime(&text, now, Amsterdam), Ok(now + Duration::minutes(minutes)), "{}", text);
    }

    /// The split never loses or invents words.
    #[test]
    fn split_keeps_every_word(what in "[a-z]{2,8}( [a-z]{2,8}){0,3}", h in 1u32..=12, form in 0usize..11, secs in 0i64..4_000_000_000) {
        let now = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
        let (when, _, _) = spoken(h, form);
        let text = format!("{what} at {when}");
        if let Some((a, b)) = split_trailing_time(&text, now, Amsterdam) {
            prop_assert_eq!(format!("{a} {b}"), text);
        }
    }
}
