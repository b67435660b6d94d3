//! Household data the flows work on: named lists and record collections.
//!
//! The engine reads a snapshot of this and returns `DataChange`s; the store (or the
//! test simulator) applies them. `apply` here is the reference semantics every store
//! must reproduce, so it is deliberately small and total (it never fails).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::member::Member;

/// One item on a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListItem {
    /// Identity for merging ("Bananas" and "banana" share a key); see `parse::item_key`.
    pub key: String,
    /// The item as first typed.
    pub name: String,
    /// Quantity, at least 1.
    pub qty: u32,
    /// Member name of who added it.
    pub added_by: String,
    /// When it was added.
    pub added_at: DateTime<Utc>,
}

/// One record in a collection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Id, unique in its collection.
    pub id: String,
    /// Field values.
    pub fields: BTreeMap<String, serde_json::Value>,
    /// Member name of who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Everything a household has stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HouseholdData {
    /// List name → items, in the order they were first added.
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<ListItem>>,
    /// Collection name → records, in creation order.
    #[serde(default)]
    pub records: BTreeMap<String, Vec<Record>>,
    /// The members, once an admin changed them over chat; `None` means household.yaml's.
    /// See `crate::roster::effective`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Member>>,
}

/// One change to household data, produced by the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DataChange {
    /// Insert the item, or replace the item with the same key.
    ListPut {
        /// List name.
        list: String,
        /// The full new item.
        item: ListItem,
    },
    /// Remove the item with this key (no-op if absent).
    ListRemove {
        /// List name.
        list: String,
        /// Item key.
        key: String,
    },
    /// Remove every item.
    ListClear {
        /// List name.
        list: String,
    },
    /// Insert the record, or replace the record with the same id.
    RecordPut {
        /// Collection name.
        collection: String,
        /// The full new record.
        record: Record,
    },
    /// Delete the record with this id (no-op if absent).
    RecordDelete {
        /// Collection name.
        collection: String,
        /// Record id.
        id: String,
    },
    /// Replace the whole member roster (it then takes precedence over household.yaml).
    /// A roster is a handful of members, so the whole of it is simpler and atomic.
    SetMembers {
        /// Every member, in order.
        members: Vec<Member>,
    },
}

impl HouseholdData {
    /// Applies one change. Total: unknown lists or ids are created or ignored, never errors.
    pub fn apply(&mut self, change: &DataChange) {
        match change {
            DataChange::ListPut { list, item } => {
                let items = self.lists.entry(list.clone()).or_default();
                match items.iter_mut().find(|i| i.key == item.key) {
                    Some(existing) => *existing = item.clone(),
                    None => items.push(item.clone()),
                }
            }
            DataChange::ListRemove { list, key } => {
                if let Some(items) = self.lists.get_mut(list) {
                    items.retain(|i| &i.key != key);
                }
            }
            DataChange::ListClear { list } => {
                if let Some(items) = self.lists.get_mut(list) {
                    items.clear();
                }
            }
            DataChange::RecordPut { collection, record } => {
                let recs = self.records.entry(collection.clone()).or_default();
                match recs.iter_mut().find(|r| r.id == record.id) {
                    Some(existing) => *existing = record.clone(),
                    None => recs.push(record.clone()),
                }
            }
            DataChange::RecordDelete { collection, id } => {
                if let Some(recs) = self.records.get_mut(collection) {
                    recs.retain(|r| &r.id != id);
                }
            }
            DataChange::SetMembers { members } => self.members = Some(members.clone()),
        }
    }

    /// Items of a list (empty if the list has none).
    pub fn list(&self, name: &str) -> &[ListItem] {
        self.lists.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Records of a collection (empty if none).
    pub fn collection(&self, name: &str) -> &[Record] {
        self.records.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The next free numeric id in a collection ("1", "2", …). Deterministic, so the
    /// same inputs always produce the same ids.
    pub fn next_record_id(&self, collection: &str) -> String {
        let max = self
            .collection(collection)
            .iter()
            .filter_map(|r| r.id.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        (max + 1).to_string()
    }
}
