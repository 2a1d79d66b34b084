//! HTML building blocks shared by the report, the comparison page and the
//! capacity page: the page shell, tables, chart figures, the table of
//! contents, the environment block and number formatting (the counts and
//! byte sizes are shared with the terminal summary). Markup lives in
//! `templates/`; this only fills it.

use super::charts::Chart;
use super::template::{escape, html, render, text};
use crate::results::Environment;

const LAYOUT: &str = include_str!("templates/layout.html");
const STYLE: &str = include_str!("templates/style.css");
const TABLE: &str = include_str!("templates/table.html");
const VERDICT: &str = include_str!("templates/verdict.html");
const FLAG: &str = include_str!("templates/flag.html");
const FIGURE: &str = include_str!("templates/figure.html");
const CHART: &str = include_str!("templates/chart.html");

/// What differs between pages; the shell around it (head, CSP, style,
/// header, footer) is `templates/layout.html`, so every page carries the
/// same no-network policy and styling.
pub struct Page<'a> {
    /// Template name for errors (`report.html`, ...).
    pub name: &'a str,
    pub title: &'a str,
    pub heading: &'a str,
    pub subtitle: &'a str,
    /// The subcommand that wrote the page, when it is not `bench run`/`report`.
    pub command: Option<&'a str>,
    /// The rendered content of `<main>`.
    pub main: String,
}

/// Wraps a page's `<main>` content in the shared shell.
pub fn page(p: Page<'_>) -> anyhow::Result<String> {
    let command = p.command.map(|c| format!(" ({c})")).unwrap_or_default();
    Ok(render(
        p.name,
        LAYOUT,
        &[
            ("version", text(env!("CARGO_PKG_VERSION"))),
            ("title", text(p.title)),
            ("style", html(STYLE)),
            ("heading", text(p.heading)),
            ("subtitle", text(p.subtitle)),
            ("main", html(p.main)),
            ("command", text(command)),
        ],
    )?)
}

/// One highlighted line in a verdict box (interrupted, saturated, ...).
pub fn flag(class: &str, label: &str, message: impl Into<String>) -> anyhow::Result<String> {
    Ok(render(
        "flag.html",
        FLAG,
        &[
            ("class", text(class)),
            ("label", text(label)),
            ("message", text(message.into())),
        ],
    )?)
}

/// The verdict box at the top of a page: a headline, its `flags` (from
/// [`flag`]), the headline figures, then `detail` (trusted HTML).
pub fn verdict(
    class: &str,
    headline: &str,
    flags: String,
    figures: &[(&str, String)],
    detail: String,
) -> anyhow::Result<String> {
    let mut figures_html = String::new();
    for (label, value) in figures {
        figures_html.push_str(&render(
            "figure.html",
            FIGURE,
            &[("label", text(*label)), ("value", text(value.as_str()))],
        )?);
    }
    Ok(render(
        "verdict.html",
        VERDICT,
        &[
            ("class", text(class)),
            ("headline", text(headline)),
            ("flags", html(flags)),
            ("figures", html(figures_html)),
            ("thresholds", html(detail)),
        ],
    )?)
}

/// A table cell: escaped text with an optional CSS class.
pub struct Cell {
    pub text: String,
    pub class: &'static str,
}

pub fn cell(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        class: "",
    }
}

pub fn cell_with(text: impl Into<String>, class: &'static str) -> Cell {
    Cell {
        text: text.into(),
        class,
    }
}

/// A table row; `class` styles the whole row.
pub struct Row {
    pub class: &'static str,
    pub cells: Vec<Cell>,
}

/// Renders a table from headers and rows (all text escaped). Columns listed
/// in `text_columns` are left-aligned; the rest are numbers, right-aligned.
pub fn table(
    class: &str,
    caption: &str,
    head: &[&str],
    text_columns: &[usize],
    rows: &[Row],
) -> anyhow::Result<String> {
    let head_html: String = head
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let class = if text_columns.contains(&i) {
                " class=\"text\""
            } else {
                ""
            };
            format!("<th scope=\"col\"{class}>{}</th>", escape(h))
        })
        .collect();
    let rows_html: String = rows
        .iter()
        .map(|row| {
            let cells: String = row
                .cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let text = if text_columns.contains(&i) {
                        "text"
                    } else {
                        ""
                    };
                    let classes: Vec<&str> = [text, c.class]
                        .into_iter()
                        .filter(|c| !c.is_empty())
                        .collect();
                    let class = if classes.is_empty() {
                        String::new()
                    } else {
                        format!(" class=\"{}\"", classes.join(" "))
                    };
                    format!("<td{class}>{}</td>", escape(&c.text))
                })
                .collect();
            let class = if row.class.is_empty() {
                String::new()
            } else {
                format!(" class=\"{}\"", row.class)
            };
            format!("<tr{class}>{cells}</tr>\n")
        })
        .collect();
    Ok(render(
        "table.html",
        TABLE,
        &[
            ("class", text(class)),
            ("id", text(format!("table-{class}"))),
            ("caption", text(caption)),
            ("head", html(head_html)),
            ("rows", html(rows_html)),
        ],
    )?)
}

/// A two-column table of labels and values (labels left-aligned).
pub fn key_value_table(
    class: &str,
    caption: &str,
    head: [&str; 2],
    pairs: Vec<(&str, String)>,
) -> anyhow::Result<String> {
    let rows: Vec<Row> = pairs
        .into_iter()
        .map(|(k, v)| Row {
            class: "",
            cells: vec![cell(k), cell(v)],
        })
        .collect();
    table(class, caption, &head, &[0], &rows)
}

/// Every chart as a `<figure>`, in order.
pub fn charts(charts: &[Chart]) -> anyhow::Result<String> {
    let mut out = String::new();
    for c in charts {
        let note = match &c.note {
            Some(n) => format!("<figcaption class=\"note\">{}</figcaption>", escape(n)),
            None => String::new(),
        };
        out.push_str(&render(
            "chart.html",
            CHART,
            &[
                ("id", text(c.id.as_str())),
                ("has_data", text(if c.has_data { "true" } else { "false" })),
                ("title", text(c.title.as_str())),
                ("svg", html(c.svg.as_str())),
                ("note", html(note)),
            ],
        )?);
    }
    Ok(out)
}

/// Links to every chart.
pub fn toc(charts: &[Chart]) -> String {
    charts
        .iter()
        .map(|c| {
            format!(
                "<a href=\"#chart-{}\">{}</a>",
                escape(&c.id),
                escape(&c.title)
            )
        })
        .collect()
}

/// The environment as a definition list.
pub fn environment(env: &Environment) -> String {
    let items = [
        ("bench version", env.bench_version.clone()),
        (
            "git commit",
            env.git_commit.clone().unwrap_or_else(|| "unknown".into()),
        ),
        ("CPU", env.cpu_model.clone()),
        ("cores", env.cores.to_string()),
        ("OS", env.os.clone()),
        ("kernel", env.kernel.clone()),
    ];
    let body: String = items
        .iter()
        .map(|(k, v)| {
            let v = if v.is_empty() { "unknown" } else { v.as_str() };
            format!("<dt>{}</dt><dd>{}</dd>", escape(k), escape(v))
        })
        .collect();
    format!("<dl class=\"env\">{body}</dl>")
}

pub use crate::format::{bytes, grouped, ms, per_second, percent};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(grouped(-1000), "-1,000");
        assert_eq!(ms(0.4123), "0.412");
        assert_eq!(ms(1234.4), "1,234");
        assert_eq!(bytes(8192.0), "8.0 KiB");
        assert_eq!(percent(0.0), "0 %");
        assert_eq!(per_second(12345.4), "12,345/s");
    }
}
