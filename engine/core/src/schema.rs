//! JSON Schemas of the YAML files, for editor completion and hover docs
//! (yaml-language-server supports draft-07 fully, so that is what we emit).
//! `schema/*.schema.json` are generated from these types; a test fails on drift.

use schemars::generate::SchemaSettings;

use crate::model::{FlowFile, HouseholdFile};
use crate::testing::TestFile;

/// The schema files: (file name under `schema/`, pretty JSON).
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("flow.schema.json", render::<FlowFile>("Alfred-Home flow")),
        (
            "household.schema.json",
            render::<HouseholdFile>("Alfred-Home household"),
        ),
        (
            "flow-test.schema.json",
            render::<TestFile>("Alfred-Home conversation tests"),
        ),
    ]
}

fn render<T: schemars::JsonSchema>(title: &str) -> String {
    let mut schema = SchemaSettings::draft07().into_generator().into_root_schema_for::<T>();
    schema.insert("title".to_owned(), serde_json::Value::String(title.to_owned()));
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
