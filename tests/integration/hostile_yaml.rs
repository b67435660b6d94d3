//! Hostile inputs: each must come back as diagnostics (never a panic, a hang or an
//! out-of-memory), and the diagnostics must render. Every check runs on its own thread
//! with a 30 s hang detector (no timing bound: debug builds on CI are slow).

use std::fmt::Write as _;

use alfred::cli::flowdir::FlowDir;
use alfred_core::check::{Checked, MAX_FILE_BYTES};

use crate::support::{HOUSEHOLD, TempDir, check_flow, errors, finishes, render_all, src};

/// Checks `text` as a flow file on its own thread; asserts an error with one of
/// `codes` and that everything renders. Returns the rendered diagnostics.
fn assert_rejected(what: &str, text: String, codes: &[&str]) -> String {
    let (checked, rendered) = finishes(what, move || {
        let checked = check_flow(text.clone());
        let household = src("household.yaml", HOUSEHOLD);
        let flow = src("flow.yaml", text);
        let rendered = render_all(&checked, &[&household, &flow]);
        (checked, rendered)
    });
    assert_errors(what, &checked, codes);
    assert!(!rendered.is_empty(), "{what}: nothing rendered");
    // Rendering stays bounded even when the input is huge.
    assert!(rendered.len() < 64 * 1024, "{what}: rendered {} bytes", rendered.len());
    rendered
}

fn assert_errors(what: &str, checked: &Checked, codes: &[&str]) {
    let errs = errors(checked);
    assert!(checked.flows.is_none(), "{what}: a flow set was built");
    assert!(
        errs.iter().any(|d| codes.contains(&d.code)),
        "{what}: expected an error with code {codes:?}, got {:?}",
        checked.diagnostics
    );
}

#[test]
fn billion_laughs_alias_bomb() {
    // The classic: nine levels of ten aliases each, 10^9 strings if expanded.
    let mut y = String::from("id: bomb\nsteps:\n  - set:\n      a0: &a0 \"lol\"\n");
    for i in 1..=9 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        writeln!(y, "      a{i}: &a{i} [{refs}]").unwrap();
    }
    y.push_str("      boom: *a9\n");
    let r = assert_rejected("alias bomb", y, &["yaml"]);
    assert!(r.contains("error[yaml]"), "{r}");
}

#[test]
fn alias_bomb_that_the_model_accepts() {
    // A bomb the types do not stop early: steps → list sections → rows, each level
    // 333 aliases of the level below (within the alias budget), 333^3 = 37 million
    // rows if expanded. The parse budget has to stop it.
    let n = 333;
    let mut y = String::from(
        "id: bomb\nsteps:\n  - &T\n    ask:\n      slot: s\n      prompt: p\n      list:\n        button: b\n        \
         sections:\n          - &S\n            title: t\n            rows:\n              - &R { id: r, title: lol }\n",
    );
    for _ in 1..n {
        y.push_str("              - *R\n");
    }
    for _ in 1..n {
        y.push_str("          - *S\n");
    }
    for _ in 1..n {
        y.push_str("  - *T\n");
    }
    let r = assert_rejected("type-valid alias bomb", y, &["yaml"]);
    assert!(r.contains("budget"), "stopped by the parse budget:\n{r}");
}

#[test]
fn alias_bomb_in_household() {
    let mut y = String::from("household:\n  name: &a0 \"lol\"\n  timezone: Europe/Amsterdam\nlists:\n");
    for i in 1..=9 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        writeln!(y, "  - &a{i} [{refs}]").unwrap();
    }
    let checked = finishes("household alias bomb", move || {
        alfred_core::check::load(Some(&src("household.yaml", y)), &[])
    });
    assert_errors("household alias bomb", &checked, &["yaml"]);
}

#[test]
fn deep_flow_nesting_brackets() {
    let depth = 10_000;
    let y = format!("id: deep\nsteps: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    assert_rejected("10,000 x [", y, &["yaml"]);
}

#[test]
fn deep_flow_nesting_braces() {
    let depth = 10_000;
    let y = format!(
        "id: deep\nsteps:\n  - set: {}{}\n",
        "{a: ".repeat(depth),
        "}".repeat(depth)
    );
    assert_rejected("10,000 x {a:", y, &["yaml"]);
}

#[test]
fn deep_block_nesting_compact_sequences() {
    // `- - - - … x`: 10,000 nested block sequences on one line.
    let y = format!("id: deep\nsteps:\n  {}x\n", "- ".repeat(10_000));
    assert_rejected("10,000 x `- `", y, &["yaml"]);
}

#[test]
fn deep_block_nesting_by_indentation() {
    // One more space per level. 10,000 levels would be 50 MB (rejected for its size,
    // see `deep_indentation_10000_levels`); 1,400 levels fit under the size limit and
    // reach the parser.
    let mut y = String::from("id: deep\nsteps:\n  - set:\n");
    for level in 0..1_400 {
        writeln!(y, "{}k{level}:", " ".repeat(6 + level)).unwrap();
    }
    assert!(y.len() < MAX_FILE_BYTES, "{} bytes", y.len());
    assert_rejected("1,400 indented levels", y, &["yaml"]);
}

#[test]
fn deep_indentation_10000_levels() {
    let mut y = String::from("id: deep\nsteps:\n");
    for level in 0..10_000 {
        writeln!(y, "{}k{level}:", " ".repeat(2 + level)).unwrap();
    }
    assert_rejected("10,000 indented levels", y, &["file-too-large", "yaml"]);
}

#[test]
fn five_megabyte_file() {
    let line = "  - send: The quick brown fox jumps over the lazy dog.\n";
    let mut y = String::from("id: big\nsteps:\n");
    while y.len() < 5 * 1024 * 1024 {
        y.push_str(line);
    }
    let r = assert_rejected("5 MB file", y, &["file-too-large"]);
    assert!(r.contains("the limit is"), "{r}");
}

#[test]
fn five_megabyte_file_via_flowdir() {
    let tmp = TempDir::new("big");
    std::fs::write(tmp.path().join("household.yaml"), HOUSEHOLD).unwrap();
    let mut y = String::from("id: big\nsteps:\n");
    while y.len() < 5 * 1024 * 1024 {
        y.push_str("  - send: The quick brown fox jumps over the lazy dog.\n");
    }
    std::fs::write(tmp.path().join("big.yaml"), y).unwrap();
    let path = tmp.path().to_owned();
    let (checked, rendered) = finishes("5 MB file via FlowDir", move || {
        let dir = FlowDir::read(&path).expect("read");
        // FlowDir reads at most one byte past the limit.
        assert!(dir.flows[0].text.len() <= MAX_FILE_BYTES + 1);
        let checked = dir.check();
        let rendered: String = checked
            .diagnostics
            .iter()
            .map(|d| d.render(dir.source(&d.file)))
            .collect();
        (checked, rendered)
    });
    assert_errors("5 MB file via FlowDir", &checked, &["file-too-large"]);
    assert!(rendered.contains("big.yaml"), "{rendered}");
}

#[test]
fn hundred_thousand_top_level_keys() {
    let mut y = String::from("id: wide\nsteps:\n  - send: hi\n");
    for i in 0..100_000 {
        writeln!(y, "k{i}: 1").unwrap();
    }
    let r = assert_rejected("100,000 top-level keys", y, &["yaml", "file-too-large"]);
    assert!(r.contains("unknown field `k0`") || r.contains("file-too-large"), "{r}");
}

#[test]
fn hundred_thousand_keys_in_one_map() {
    // A map the model accepts (a per-language text), so every key is parsed and checked.
    let keys: Vec<String> = (0..100_000u32).map(|i| format!("\"l{i:x}\":x")).collect();
    let y = format!("id: wide\nsteps:\n  - send:\n      text: {{{}}}\n", keys.join(","));
    assert!(y.len() < MAX_FILE_BYTES, "{} bytes", y.len());
    let checked = finishes("100,000 keys in a text map", move || check_flow(y));
    // Nothing is wrong with it except its size: it loads, or a budget stops it.
    assert!(
        checked.flows.is_some() || errors(&checked).iter().any(|d| d.message.contains("budget")),
        "{:?}",
        checked.diagnostics
    );
}

#[test]
fn invalid_utf8_via_flowdir() {
    let tmp = TempDir::new("binary");
    std::fs::write(tmp.path().join("household.yaml"), HOUSEHOLD).unwrap();
    let mut garbage: Vec<u8> = b"id: bin\nsteps:\n  - send: ".to_vec();
    garbage.extend_from_slice(&[
        0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80, 0x1b, b'[', b'2', b'J', 0x07, 0xa0, 0xa1,
    ]);
    garbage.extend_from_slice(b"\n");
    std::fs::write(tmp.path().join("bin.yaml"), &garbage).unwrap();
    // Pure binary noise too (a PNG header and friends).
    let mut noise = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    noise.extend((0u32..4096).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(tmp.path().join("noise.yaml"), &noise).unwrap();
    let path = tmp.path().to_owned();
    let (checked, rendered) = finishes("invalid UTF-8", move || {
        let dir = FlowDir::read(&path).expect("FlowDir must read invalid UTF-8 (lossily)");
        assert_eq!(dir.flows.len(), 2);
        let checked = dir.check();
        let rendered: String = checked
            .diagnostics
            .iter()
            .map(|d| d.render(dir.source(&d.file)))
            .collect();
        (checked, rendered)
    });
    assert!(checked.flows.is_none());
    for f in ["bin.yaml", "noise.yaml"] {
        assert!(
            checked
                .diagnostics
                .iter()
                .any(|d| d.file.ends_with(f) && d.severity == alfred_core::diag::Severity::Error),
            "{f}: no error in {:?}",
            checked.diagnostics
        );
    }
    assert!(!rendered.is_empty());
}

#[test]
fn wrong_types_everywhere() {
    let cases = [
        "id: [1, 2]\nsteps: []\n",
        "id: x\npriority: high\nsteps:\n  - send: hi\n",
        "id: x\ninterruptible: maybe\nsteps:\n  - send: hi\n",
        "id: x\nsteps: none\n",
        "id: x\nsteps:\n  - send: [1, 2]\n",
        "id: x\nsteps:\n  - ask: yes\n",
        "id: x\nsteps:\n  - ask: { slot: [a], prompt: hi }\n",
        "id: x\nsteps:\n  - ask: { slot: a, prompt: hi, max_attempts: -1 }\n",
        "id: x\nsteps:\n  - ask: { slot: a, prompt: hi, max_attempts: 1e99 }\n",
        "id: x\nsteps:\n  - next: { a: b }\n",
        "id: x\ntriggers: { keywords: hi }\nsteps:\n  - send: hi\n",
        "id: x\ntriggers:\n  - kind: telepathy\nsteps:\n  - send: hi\n",
        "id: x\ntriggers:\n  - roles: [emperor]\n    keywords: hi\nsteps:\n  - send: hi\n",
        "id: x\ntriggers:\n  - priority: 99999999999999999999\n    keywords: hi\nsteps:\n  - send: hi\n",
        "id: x\nsteps:\n  - set: [1, 2]\n",
        "id: x\nsteps:\n  - switch: { on: a, cases: [1] }\n",
        "id: x\nsteps:\n  - end: please\n",
        "id: x\nsteps:\n  - list_add: shopping\n",
        "id: x\nsteps:\n  - send: { text: { en: [1] } }\n",
    ];
    for (i, y) in cases.into_iter().enumerate() {
        assert_rejected(&format!("wrong type #{i}: {y:?}"), y.to_owned(), &["yaml"]);
    }
}

#[test]
fn unknown_keys() {
    for y in [
        "id: x\nstep:\n  - send: hi\n",
        "id: x\nsteps:\n  - send: hi\n    nxt: end\n",
        "id: x\nsteps:\n  - send: { text: hi, button: [] }\n",
        "id: x\ntriggers:\n  - keyword: hi\nsteps:\n  - send: hi\n",
        "id: x\nsteps:\n  - ask: { slot: a, prompt: hi, validate: { email: true } }\n",
    ] {
        let r = assert_rejected(&format!("unknown key: {y:?}"), y.to_owned(), &["yaml"]);
        assert!(r.contains("unknown field"), "{r}");
    }
}

#[test]
fn duplicate_keys() {
    for y in [
        "id: x\nid: y\nsteps:\n  - send: hi\n",
        "id: x\nsteps:\n  - send: hi\n    next: end\n    next: end\n",
        "id: x\nsteps:\n  - set: { a: '1', a: '2' }\n",
        "id: x\nsteps:\n  - send:\n      text: { en: hi, en: hello }\n",
    ] {
        let r = assert_rejected(&format!("duplicate key: {y:?}"), y.to_owned(), &["yaml"]);
        assert!(r.contains("duplicate"), "{r}");
    }
}

#[test]
fn empty_and_blank_files() {
    for y in ["", "\n\n", "   \t\n", "# only a comment\n"] {
        assert_rejected(&format!("empty: {y:?}"), y.to_owned(), &["empty-file", "yaml"]);
    }
}

#[test]
fn null_documents() {
    for y in ["~\n", "null\n", "---\n", "--- ~\n...\n"] {
        assert_rejected(&format!("null document: {y:?}"), y.to_owned(), &["yaml", "empty-file"]);
    }
}

#[test]
fn not_a_map() {
    for y in [
        "- id: x\n  steps: []\n",
        "just a string\n",
        "42\n",
        "[]\n",
        "!!binary aGVsbG8=\n",
        "id: a\n---\nid: b\n",
    ] {
        assert_rejected(&format!("not a map: {y:?}"), y.to_owned(), &["yaml"]);
    }
}

#[test]
fn hostile_household_files() {
    for y in [
        "",
        "~\n",
        "- a\n",
        "household: ~\n",
        "household: { name: x }\n",
        "{{{{\n",
    ] {
        let what = format!("household {y:?}");
        let text = y.to_owned();
        let checked = finishes(&what, move || {
            let h = src("household.yaml", text);
            let c = alfred_core::check::load(Some(&h), &[src("flow.yaml", "id: x\nsteps:\n  - send: hi\n")]);
            let _ = render_all(&c, &[&h]);
            c
        });
        assert_errors(&what, &checked, &["yaml", "empty-file"]);
    }
}

#[test]
fn many_steps_and_a_long_chain() {
    // 5,000 steps that each jump to the next, and a cycle through all of them: the
    // graph checks are iterative, so no stack overflow.
    let mut y = String::from("id: chain\nsteps:\n");
    for i in 0..5_000 {
        writeln!(y, "  - id: s{i}\n    next: s{}", (i + 1) % 5_000).unwrap();
    }
    let checked = finishes("5,000-step cycle", move || check_flow(y));
    assert!(
        checked.diagnostics.iter().any(|d| d.code == "loop-without-wait"),
        "{:?}",
        checked.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>()
    );
}

#[test]
fn pathological_regex_and_long_lines() {
    // A regex whose compiled size exceeds the limit, and a 500 KB single line.
    let y = "id: x\ntriggers:\n  - regex: '(?:a{1000}){1000}'\nsteps:\n  - send: hi\n".to_owned();
    assert_rejected("huge regex", y, &["regex"]);
    let y = format!("id: x\nsteps:\n  - send: {{ text: hi, to: {} }}\n", "x".repeat(500_000));
    let checked = finishes("500 KB line", move || check_flow(y));
    assert_errors("500 KB line", &checked, &["unknown-member"]);
    let source = format!("id: x\nsteps:\n  - send: {{ text: hi, to: {} }}\n", "x".repeat(500_000));
    let r = checked.diagnostics[0].render(Some(&source));
    // The source line is cut when shown (the message itself still names the whole value).
    let shown = r.lines().find(|l| l.starts_with("3 | ")).expect("source line shown");
    assert!(shown.chars().count() < 300, "{} chars", shown.chars().count());
}

/// Every truncation (at each line), every single-line deletion and every half-line
/// cut of the real flows and the broken fixtures: never a panic, and every error renders.
#[test]
fn truncated_and_mangled_real_files() {
    let mut files = Vec::new();
    for dir in ["flows", "tests/fixtures/broken"] {
        for e in std::fs::read_dir(crate::support::root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") && !p.ends_with("household.yaml") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() > 20);
    let mut count = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let variants = mangled(&text);
        count += variants.len();
        // One hang detector per batch, not per variant (they are thousands) nor per file
        // (the variants of a long flow grow with the square of its length, and a loaded
        // machine then takes longer than the detector allows without anything hanging).
        for (i, batch) in variants.chunks(VARIANTS_PER_DETECTOR).enumerate() {
            let batch = batch.to_vec();
            finishes(&format!("mangled {} batch {i}", path.display()), move || {
                check_all(batch)
            });
        }
    }
    assert!(count > 1_000, "{count} variants");
}

/// Variants checked under one hang detector.
const VARIANTS_PER_DETECTOR: usize = 200;

fn mangled(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut variants = Vec::new();
    for i in 0..lines.len() {
        variants.push(lines[..i].join("\n"));
        let mut without = lines.clone();
        without.remove(i);
        variants.push(without.join("\n"));
        // Drop the first half of the line too (breaks keys and indentation).
        let mut cut = lines.clone();
        let half: String = cut[i].chars().skip(cut[i].chars().count() / 2).collect();
        cut[i] = &half;
        variants.push(cut.join("\n"));
    }
    variants
}

fn check_all(variants: Vec<String>) {
    let household = src("household.yaml", HOUSEHOLD);
    for v in variants {
        let flow = src("flow.yaml", v);
        let result = std::panic::catch_unwind(|| {
            let checked = alfred_core::check::load(Some(&household), std::slice::from_ref(&flow));
            render_all(&checked, &[&household, &flow])
        });
        assert!(result.is_ok(), "the checker panicked on:\n{}", flow.text);
    }
}
