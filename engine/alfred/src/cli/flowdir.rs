//! Reading a flows directory: `household.yaml` at its root, flow files (`*.yaml`,
//! `*.yml`) anywhere below, and conversation tests (`*.test.yaml`, or any YAML under a
//! `tests/` folder).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use alfred_core::check::{Checked, MAX_FILE_BYTES, SourceFile, load};
use alfred_core::flow::FlowSet;

/// The files of a flows directory.
#[derive(Debug, Default)]
pub struct FlowDir {
    /// `household.yaml`, if present.
    pub household: Option<SourceFile>,
    /// Flow files, sorted by path.
    pub flows: Vec<SourceFile>,
    /// Test files, sorted by path.
    pub tests: Vec<SourceFile>,
}

/// Errors reading a flows directory.
#[derive(Debug, thiserror::Error)]
pub enum FlowDirError {
    /// The path does not exist or cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Why a flows directory could not be loaded into a runnable flow set.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory could not be read.
    #[error(transparent)]
    Read(#[from] FlowDirError),
    /// The flows have errors; `report` holds every diagnostic, rendered with its source.
    #[error("the flows in {dir} have errors:\n{report}")]
    Flows {
        /// The directory, as given.
        dir: String,
        /// The rendered diagnostics, one after another (empty if there were none to show).
        report: String,
    },
}

const MAX_DEPTH: usize = 8;

impl FlowDir {
    /// Reads every relevant file below `root`. A single file may be given instead of a
    /// directory; its household is then looked up beside it.
    pub fn read(root: &Path) -> Result<FlowDir, FlowDirError> {
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| FlowDirError::Io { path, source }
        };
        let meta = fs::metadata(root).map_err(io_err(root))?;
        let mut dir = FlowDir::default();
        let base = if meta.is_dir() {
            root.to_owned()
        } else {
            root.parent().unwrap_or(Path::new(".")).to_owned()
        };
        let mut files = Vec::new();
        if meta.is_dir() {
            walk(root, 0, &mut files).map_err(io_err(root))?;
        } else {
            files.push(root.to_owned());
            let h = base.join("household.yaml");
            if h.exists() && h != root {
                files.push(h);
            }
        }
        files.sort();
        for path in files {
            let rel = path
                .strip_prefix(&base)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let text = read_text(&path).map_err(io_err(&path))?;
            let file = SourceFile {
                path: display_path(&base, &rel),
                text,
            };
            if rel == "household.yaml" || rel == "household.yml" {
                dir.household = Some(file);
            } else if rel.ends_with(".test.yaml")
                || rel.ends_with(".test.yml")
                || rel.starts_with("tests/")
                || rel.contains("/tests/")
            {
                dir.tests.push(file);
            } else {
                dir.flows.push(file);
            }
        }
        Ok(dir)
    }

    /// Checks the flows (tests are not flows and are not checked here).
    pub fn check(&self) -> Checked {
        load(self.household.as_ref(), &self.flows)
    }

    /// Reads `root`, checks it and renders its diagnostics: the one way `alfred test`,
    /// `alfred shell` and the service get a runnable flow set from a directory. The
    /// directory comes back too, for its tests and sources.
    pub fn load_checked(root: &Path) -> Result<(FlowDir, FlowSet), LoadError> {
        let dir = FlowDir::read(root)?;
        let checked = dir.check();
        match checked.flows {
            Some(flows) => Ok((dir, flows)),
            None => Err(LoadError::Flows {
                dir: root.display().to_string(),
                report: checked
                    .diagnostics
                    .iter()
                    .map(|d| d.render(dir.source(&d.file)))
                    .collect::<Vec<_>>()
                    .join("\n"),
            }),
        }
    }

    /// The source text of a file by its display path, for rendering diagnostics.
    pub fn source(&self, path: &str) -> Option<&str> {
        self.household
            .iter()
            .chain(&self.flows)
            .chain(&self.tests)
            .find(|f| f.path == path)
            .map(|f| f.text.as_str())
    }
}

fn display_path(base: &Path, rel: &str) -> String {
    if base == Path::new(".") || base.as_os_str().is_empty() {
        rel.to_owned()
    } else {
        format!("{}/{rel}", base.to_string_lossy().trim_end_matches('/'))
    }
}

/// Reads a file as text. Oversized files are read only up to the limit (the checker
/// reports them), and invalid UTF-8 is replaced rather than refused, so one bad file
/// still yields a diagnostic instead of aborting the whole check.
fn read_text(path: &Path) -> io::Result<String> {
    use std::io::Read as _;
    let mut f = fs::File::open(path)?;
    let mut buf = Vec::new();
    f.by_ref().take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let ft = entry.file_type()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if ft.is_dir() {
            walk(&path, depth + 1, out)?;
        } else if ft.is_file() && (name.ends_with(".yaml") || name.ends_with(".yml")) {
            out.push(path);
        }
    }
    Ok(())
}
