//! Fuzz target: the flow loader (YAML parsing + every semantic check) fed an
//! arbitrary flow file next to a fixed, valid household. Must never panic or hang,
//! and rendering each diagnostic against the (hostile) source must not either.
#![no_main]

use alfred_core::check::{SourceFile, load};
use libfuzzer_sys::fuzz_target;

const HOUSEHOLD: &str = include_str!("../../../flows/household.yaml");

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let household = SourceFile {
        path: "household.yaml".to_owned(),
        text: HOUSEHOLD.to_owned(),
    };
    let files = [SourceFile {
        path: "fuzz.yaml".to_owned(),
        text: text.clone(),
    }];
    let checked = load(Some(&household), &files);
    for d in &checked.diagnostics {
        // Positions of household diagnostics do not belong to `text`: rendering them
        // against it must still be safe (out-of-range lines/columns are clamped).
        let _ = d.render(Some(&text));
        let _ = d.render(None);
        if d.file == "household.yaml" {
            let _ = d.render(Some(HOUSEHOLD));
        }
    }
    // A flow set is only built when there is no error.
    assert!(checked.flows.is_none() || checked.errors() == 0);
});
