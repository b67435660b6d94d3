//! `tests/fixtures/broken/`: one file per class of mistake, each checked on its own
//! (with the fixture household) and the folder as a whole. The expected diagnostics
//! (code, line, column, message) are asserted here; the full rendered `alfred check`
//! output (caret, flow/step, hint) is pinned by the snapshots in `tests/snapshots/`.

use std::collections::BTreeSet;
use std::path::Path;

use alfred::cli::flowdir::FlowDir;
use alfred_core::diag::Severity::{self, Error as E, Warning as W};

use crate::support::{render_check, src};

const DIR: &str = "tests/fixtures/broken";

/// One expected diagnostic: severity, code, line, column, a fragment of the message.
type Expect = (Severity, &'static str, u32, u32, &'static str);

/// Every fixture (files checked together, first file named in the snapshot) and
/// exactly the diagnostics it must produce.
const CASES: &[(&[&str], &[Expect])] = &[
    (&["yaml_syntax.yaml"], &[(E, "yaml", 4, 11, "unclosed quote")]),
    (&["unknown_key.yaml"], &[(E, "yaml", 5, 5, "unknown field `sendd`")]),
    (&["wrong_type.yaml"], &[(E, "yaml", 7, 21, "u32")]),
    (
        &["duplicate_key.yaml"],
        &[(E, "yaml", 6, 5, "duplicate mapping key: send")],
    ),
    (
        &["duplicate_flow_id_a.yaml", "duplicate_flow_id_b.yaml"],
        &[(E, "duplicate-flow", 2, 5, "flow id `twin` is already used")],
    ),
    (
        &["duplicate_step.yaml"],
        &[(E, "duplicate-step", 6, 9, "step id `greet` is used twice")],
    ),
    (
        &["unknown_step.yaml"],
        &[
            (E, "unknown-step", 6, 11, "unknown step `confrim`"),
            // The broken `next` leaves `confirm` with no way in: reported too.
            (W, "unreachable", 7, 9, "step `confirm` can never run"),
        ],
    ),
    (
        &["unknown_flow.yaml"],
        &[
            (E, "unknown-flow", 5, 11, "unknown flow `no_such_flow`"),
            (E, "unknown-flow", 7, 11, "unknown flow `nowhere_flow`"),
        ],
    ),
    (
        &["unknown_list.yaml"],
        &[(E, "unknown-list", 4, 23, "unknown list `shoping`")],
    ),
    (
        &["unknown_collection.yaml"],
        &[
            (E, "unknown-collection", 5, 19, "unknown collection `chorse`"),
            (E, "unknown-field", 9, 24, "collection `chores` has no field `titel`"),
        ],
    ),
    (
        &["unknown_template.yaml"],
        &[(E, "unknown-template", 6, 15, "unknown template `chore_remindr`")],
    ),
    (
        &["template_params.yaml"],
        &[(E, "template-params", 7, 17, "takes 1 parameter(s), 2 given")],
    ),
    (
        &["unknown_member.yaml"],
        &[(E, "unknown-member", 6, 11, "unknown member `Bem`")],
    ),
    (&["bad_regex.yaml"], &[(E, "regex", 4, 12, "unclosed group")]),
    (
        &["template_syntax.yaml"],
        &[(E, "template", 5, 13, "template syntax error")],
    ),
    (
        &["undefined_variable.yaml"],
        &[(E, "undefined", 5, 13, "`nmae` is undefined here")],
    ),
    (
        &["maybe_undefined_slot.yaml"],
        &[(
            W,
            "maybe-undefined",
            8,
            13,
            "no `ask` in this flow collects slot `when`",
        )],
    ),
    (
        &["invalid_cron.yaml"],
        &[(E, "schedule", 5, 13, "the hour field \"25\" is invalid")],
    ),
    (
        &["invalid_timezone.yaml"],
        &[(E, "schedule", 6, 17, "unknown time zone \"Europe/Amsterdamm\"")],
    ),
    (
        &["proactive_send.yaml"],
        &[(
            E,
            "proactive-send",
            7,
            11,
            "a schedule or timer reaches this message, but it says nothing about a closed 24-hour window",
        )],
    ),
    (
        &["whatsapp_limits.yaml"],
        &[
            (E, "whatsapp-limit", 10, 9, "4 buttons; WhatsApp allows 1 to 3"),
            (
                E,
                "whatsapp-limit",
                18,
                29,
                "button title is 27 characters; WhatsApp allows at most 20",
            ),
            (E, "whatsapp-limit", 26, 11, "11 list rows; WhatsApp allows 1 to 10"),
            (
                E,
                "whatsapp-limit",
                39,
                11,
                "message body is 4127 characters; WhatsApp allows at most 4096",
            ),
        ],
    ),
    (
        &["next_without_else.yaml"],
        &[(E, "no-way-forward", 10, 7, "conditional `next` has no `else`")],
    ),
    (
        &["switch_without_default.yaml"],
        &[(E, "no-way-forward", 11, 7, "`switch` has no `default`")],
    ),
    (
        &["unreachable_step.yaml"],
        &[(W, "unreachable", 7, 9, "step `orphan` can never run")],
    ),
    (
        &["loop_without_wait.yaml"],
        &[(
            W,
            "loop-without-wait",
            4,
            9,
            "steps loop back to `tick` without asking anything",
        )],
    ),
    (
        &["shadowed_trigger.yaml"],
        &[(
            W,
            "shadowed-trigger",
            6,
            15,
            "keyword(s) `ping` always go to the earlier trigger",
        )],
    ),
    (
        &["two_actions.yaml"],
        &[(E, "step-actions", 4, 9, "this one has send and list_add")],
    ),
    (
        &["two_matchers.yaml"],
        &[(E, "trigger", 4, 15, "must have exactly one of keywords, regex")],
    ),
];

/// The household plus the named fixture files, read the way `alfred check` reads them.
fn fixture_dir(files: &[&str]) -> FlowDir {
    let mut dir = FlowDir::read(&Path::new(DIR).join(files[0])).expect("read fixture");
    for f in &files[1..] {
        let more = FlowDir::read(&Path::new(DIR).join(f)).expect("read fixture");
        dir.flows.extend(more.flows);
    }
    assert!(
        dir.household.is_some(),
        "fixture household.yaml is read beside {files:?}"
    );
    dir
}

/// Snapshots live in `tests/snapshots/` (this file is in `tests/integration/`).
fn snapshots() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings
}

fn stem(file: &str) -> &str {
    file.trim_end_matches(".yaml")
}

#[test]
fn every_fixture_reports_exactly_its_problem() {
    let mut failures = Vec::new();
    for (files, expected) in CASES {
        let dir = fixture_dir(files);
        let checked = dir.check();
        let got: Vec<(Severity, &str, u32, u32, &str, &str)> = checked
            .diagnostics
            .iter()
            .map(|d| {
                (
                    d.severity,
                    d.code,
                    d.pos.line,
                    d.pos.col,
                    d.message.as_str(),
                    d.file.as_str(),
                )
            })
            .collect();
        let last = format!("{DIR}/{}", files[files.len() - 1]);
        let ok = got.len() == expected.len()
            && got
                .iter()
                .zip(expected.iter())
                .all(|(g, e)| g.0 == e.0 && g.1 == e.1 && g.2 == e.2 && g.3 == e.3 && g.4.contains(e.4) && g.5 == last);
        if !ok {
            failures.push(format!("{files:?}\n  expected: {expected:?}\n  got:      {got:?}"));
        }
        // A fixture with an error must not build a flow set; one with only warnings must.
        let has_error = expected.iter().any(|e| e.0 == E);
        assert_eq!(
            checked.flows.is_none(),
            has_error,
            "{files:?}: a flow set is built exactly when there is no error"
        );
    }
    assert!(
        failures.is_empty(),
        "fixtures with unexpected diagnostics:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_fixture_file_is_covered() {
    let mut on_disk: BTreeSet<String> = std::fs::read_dir(DIR)
        .expect("fixture dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(on_disk.remove("household.yaml"), "the fixture household is missing");
    let covered: BTreeSet<String> = CASES
        .iter()
        .flat_map(|(files, _)| files.iter().map(|f| (*f).to_owned()))
        .collect();
    assert_eq!(on_disk, covered, "every broken fixture needs an entry in CASES");
    assert!(CASES.len() >= 20, "about twenty classes of mistakes");
}

#[test]
fn fixture_household_is_valid() {
    let household = std::fs::read_to_string(Path::new(DIR).join("household.yaml")).unwrap();
    let checked = alfred_core::check::load(Some(&src("household.yaml", household)), &[]);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    assert!(checked.flows.is_some());
}

#[test]
fn whole_folder_reports_the_union_of_the_files() {
    let dir = FlowDir::read(Path::new(DIR)).expect("read fixtures");
    let checked = dir.check();
    assert!(checked.flows.is_none());
    let folder: BTreeSet<(String, &str, u32, u32)> = checked
        .diagnostics
        .iter()
        .map(|d| (d.file.clone(), d.code, d.pos.line, d.pos.col))
        .collect();
    let expected: BTreeSet<(String, &str, u32, u32)> = CASES
        .iter()
        .flat_map(|(files, exp)| {
            let file = format!("{DIR}/{}", files[files.len() - 1]);
            exp.iter().map(move |e| (file.clone(), e.1, e.2, e.3))
        })
        .collect();
    assert_eq!(folder, expected);
    assert_eq!(
        checked.diagnostics.len(),
        expected.len(),
        "no diagnostic is reported twice"
    );
}

#[test]
fn render_matches_cmd_check() {
    // `support::render_check` (used for the multi-file snapshot) must be what `alfred check` prints.
    let mut paths = vec![DIR.to_owned()];
    paths.extend(
        CASES
            .iter()
            .filter(|(f, _)| f.len() == 1)
            .map(|(f, _)| format!("{DIR}/{}", f[0])),
    );
    for p in paths {
        let mut out = Vec::new();
        let code = alfred::cli::check::run(Path::new(&p), &mut out).unwrap();
        let dir = FlowDir::read(Path::new(&p)).unwrap();
        assert_eq!((code, String::from_utf8(out).unwrap()), render_check(&dir), "{p}");
    }
}

#[test]
fn snapshot_whole_folder() {
    let mut out = Vec::new();
    let code = alfred::cli::check::run(Path::new(DIR), &mut out).unwrap();
    assert_eq!(code, 1);
    let out = String::from_utf8(out).unwrap();
    snapshots().bind(|| insta::assert_snapshot!("broken_folder", out));
}

#[test]
fn snapshot_whole_folder_diagnostics_yaml() {
    let checked = FlowDir::read(Path::new(DIR)).unwrap().check();
    snapshots().bind(|| insta::assert_yaml_snapshot!("broken_folder_diagnostics", checked.diagnostics));
}

#[test]
fn snapshot_each_file() {
    for (files, expected) in CASES {
        let (code, out) = render_check(&fixture_dir(files));
        // Errors fail the check; warnings alone do not.
        let has_error = expected.iter().any(|e| e.0 == E);
        assert_eq!(code, i32::from(has_error), "{files:?}: exit code");
        let name = format!("file_{}", stem(files[0]).trim_end_matches("_a"));
        snapshots().bind(|| insta::assert_snapshot!(name, out));
    }
}

// ---------------------------------------------------------------------------------------
// Regressions: checker position bugs found while writing these fixtures (short-form
// `send`, `description`, per-language texts), fixed in the checker.
// ---------------------------------------------------------------------------------------

fn first(checked: &alfred_core::Checked, code: &str) -> Option<alfred_core::diag::Diagnostic> {
    checked.diagnostics.iter().find(|d| d.code == code).cloned()
}

#[test]
fn regression_short_form_send_template_error_has_a_position() {
    let checked = crate::support::check_flow("id: a\nsteps:\n  - send: \"Hello {{ member.name\"\n");
    let d = first(&checked, "template").expect("a template error");
    assert_eq!((d.pos.line, d.pos.col), (3, 11), "{d:?}");
}

#[test]
fn regression_short_form_send_undefined_variable_has_a_position() {
    let checked = crate::support::check_flow("id: a\nsteps:\n  - send: \"Hello {{ nmae }}\"\n");
    let d = first(&checked, "undefined").expect("an undefined-variable error");
    assert_eq!((d.pos.line, d.pos.col), (3, 11), "{d:?}");
    let checked = crate::support::check_flow("id: a\nsteps:\n  - send: \"See you {{ slots.when }}\"\n");
    let d = first(&checked, "maybe-undefined").expect("a maybe-undefined warning");
    assert_eq!((d.pos.line, d.pos.col), (3, 11), "{d:?}");
}

#[test]
fn regression_description_variables_are_checked() {
    let checked = crate::support::check_flow("id: a\ndescription: \"Hi {{ nmae }}\"\nsteps:\n  - send: hi\n");
    let d = first(&checked, "undefined").expect("`nmae` is reported");
    assert_eq!((d.pos.line, d.pos.col), (2, 14), "{d:?}");
    assert!(checked.flows.is_none());
}

#[test]
fn regression_description_template_error_points_at_the_description() {
    let checked = crate::support::check_flow("id: a\ndescription: \"Hi {{ nmae\"\nsteps:\n  - send: hi\n");
    let d = first(&checked, "template").expect("a template error");
    assert_eq!((d.pos.line, d.pos.col), (2, 14), "{d:?}");
}

#[test]
fn regression_per_language_text_error_points_at_its_language() {
    let flow = "id: a\nsteps:\n  - send:\n      text:\n        en: fine\n        nl: \"{{ kapot\"\n";
    let checked = crate::support::check_flow(flow);
    let d = first(&checked, "template").expect("a template error");
    assert_eq!(d.pos.line, 6, "the `nl:` line, not `en:`: {d:?}");
}
