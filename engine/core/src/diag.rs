//! Diagnostics: every problem `alfred check` finds, with its exact place and a hint,
//! rendered like rustc (`--> file:line:col`, the source line, a caret).

use std::fmt::Write as _;

use serde::Serialize;

use crate::model::Pos;

/// How bad a problem is. Errors stop a flow set from loading; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The flow set cannot be used.
    Error,
    /// Suspicious but usable.
    Warning,
}

/// One problem in one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable short code, e.g. `unknown-step`, for documentation and tests.
    pub code: &'static str,
    /// File path as given to the loader.
    pub file: String,
    /// Where in the file (0 = unknown).
    pub pos: Pos,
    /// Flow id, when the problem is inside a flow.
    pub flow: Option<String>,
    /// Step id, when the problem is inside a step.
    pub step: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A new error at `pos` in `file`.
    pub fn error(code: &'static str, file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            file: file.to_owned(),
            pos,
            flow: None,
            step: None,
            message: message.into(),
            hint: None,
        }
    }

    /// A new warning at `pos` in `file`.
    pub fn warning(code: &'static str, file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, file, pos, message)
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Names the flow and (optionally) the step.
    pub fn within(mut self, flow: Option<&str>, step: Option<&str>) -> Self {
        self.flow = flow.map(str::to_owned);
        self.step = step.map(str::to_owned);
        self
    }

    /// Renders the diagnostic with the source line and a caret under the offending token.
    /// `source` is the whole file text (or `None` if unavailable).
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = String::new();
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        // Messages may quote what the admin wrote; keep hostile input from flooding the terminal.
        let _ = writeln!(out, "{label}[{}]: {}", self.code, clip(&self.message, 300));
        let mut place = self.file.to_string();
        if self.pos.line > 0 {
            let _ = write!(place, ":{}:{}", self.pos.line, self.pos.col.max(1));
        }
        let within = match (&self.flow, &self.step) {
            (Some(f), Some(s)) => format!(" (flow `{f}`, step `{s}`)"),
            (Some(f), None) => format!(" (flow `{f}`)"),
            _ => String::new(),
        };
        let line_no = self.pos.line as usize;
        let line_text = source.filter(|_| line_no > 0).and_then(|s| s.lines().nth(line_no - 1));
        let gutter = " ".repeat(line_no.max(1).to_string().len());
        let _ = writeln!(out, "{gutter}--> {place}{within}");
        if let Some(text) = line_text {
            let text = text.trim_end_matches('\r');
            // Long lines (minified YAML, hostile input) are cut so output stays readable.
            let shown: String = text.chars().take(200).collect();
            let col = (self.pos.col.max(1) as usize).min(shown.chars().count() + 1);
            let caret_len = token_len(&shown, col);
            let pad: String = shown
                .chars()
                .take(col - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = writeln!(out, "{gutter} |");
            let _ = writeln!(out, "{line_no} | {shown}");
            let _ = writeln!(out, "{gutter} | {pad}{}", "^".repeat(caret_len));
        }
        if let Some(h) = &self.hint {
            let _ = writeln!(out, "{gutter} = hint: {h}");
        }
        out
    }
}

/// Length (in chars) of the YAML token starting at 1-based `col`: a quoted string, or a
/// plain scalar up to the next separator. At least 1 so a caret is always visible.
fn token_len(line: &str, col: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(col - 1).collect();
    let Some(&first) = rest.first() else {
        return 1;
    };
    if first == '"' || first == '\'' {
        let end = rest[1..].iter().position(|&c| c == first).map(|p| p + 2);
        return end.unwrap_or(rest.len()).max(1);
    }
    // A plain scalar ends at a flow separator, a comment, or a `: ` (then it was a key).
    let n = rest
        .iter()
        .enumerate()
        .position(|(i, &c)| {
            matches!(c, ',' | ']' | '}' | '#')
                || (c.is_whitespace() && c != ' ')
                || (c == ':' && rest.get(i + 1).is_none_or(|n| *n == ' '))
        })
        .unwrap_or(rest.len());
    // A plain scalar may contain spaces ("add milk"), but trailing blanks are not part of it.
    let token: String = rest[..n].iter().collect();
    token.trim_end().chars().count().max(1)
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// Sorts diagnostics by file, then position, errors before warnings at the same place.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (&a.file, a.pos, a.severity, a.code, &a.message).cmp(&(&b.file, b.pos, b.severity, b.code, &b.message))
    });
}

/// Returns the closest candidate to `wrong` (edit distance at most 1/3 of its length),
/// for "did you mean" hints.
pub fn did_you_mean<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let max = (wrong.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (levenshtein(wrong, c), c))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_token() {
        let src = "id: x\nsteps:\n  - next: confrim\n";
        let d = Diagnostic::error(
            "unknown-step",
            "f.yaml",
            Pos { line: 3, col: 11 },
            "unknown step `confrim`",
        )
        .within(Some("x"), Some("step1"))
        .hint("did you mean `confirm`?");
        let r = d.render(Some(src));
        assert_eq!(
            r,
            "error[unknown-step]: unknown step `confrim`\n --> f.yaml:3:11 (flow `x`, step `step1`)\n  |\n3 |   - next: confrim\n  |           ^^^^^^^\n  = hint: did you mean `confirm`?\n"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("confrim", ["confirm", "done"]), Some("confirm"));
        assert_eq!(did_you_mean("xyz", ["confirm", "done"]), None);
    }
}
