//! Rebuild the `alfred` library when a migration is added: `embed_migrations!`
//! (engine/alfred/src/edges/store) reads `schema/migrations` at compile time, and cargo only
//! tracks the files it read, not new directories next to them.
fn main() {
    println!("cargo:rerun-if-changed=schema/migrations");
}
