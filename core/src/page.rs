//! The status pages' common parts: one self-contained HTML document (its
//! own style, no scripts, no external assets, refreshing itself), text
//! escaping, human sizes, bars and tables. Each program builds its page
//! from these; numbers are right-aligned in tabular figures so columns
//! line up.

use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A byte count in binary units: `0 B`, `512 B`, `1.5 KiB`, `20.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration in seconds as `3d 4h`, `2h 5m`, `4m 10s` or `12s`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// A percentage with one decimal.
pub fn percent(fraction: f64) -> String {
    format!("{:.1} %", fraction.clamp(0.0, 1.0) * 100.0)
}

/// A horizontal bar filled to `fraction`, with its percentage beside it.
pub fn bar(fraction: f64) -> String {
    let f = fraction.clamp(0.0, 1.0);
    format!(
        "<span class=\"bar\"><span style=\"width:{:.1}%\"></span></span> <span class=\"num\">{}</span>",
        f * 100.0,
        percent(f)
    )
}

/// A cell of a table: text, or a number (right-aligned).
#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    /// Already-escaped HTML.
    Html(String),
    Num(String),
}

/// A table with a caption; `hidden` rows not shown are said in a line
/// under it.
pub fn table(id: &str, headers: &[&str], rows: &[Vec<Cell>], hidden: usize) -> String {
    let mut out = format!("<table id=\"{}\"><thead><tr>", escape(id));
    // A column of numbers has its heading over the numbers, on the right.
    let numeric = |i: usize| {
        rows.first()
            .and_then(|r| r.get(i))
            .is_some_and(|c| matches!(c, Cell::Num(_)))
    };
    for (i, h) in headers.iter().enumerate() {
        let class = if numeric(i) { " class=\"num\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        let _ = write!(
            out,
            "<tr><td colspan=\"{}\" class=\"none\">none</td></tr>",
            headers.len()
        );
    }
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = match cell {
                Cell::Text(t) => write!(out, "<td>{}</td>", escape(t)),
                Cell::Html(h) => write!(out, "<td>{h}</td>"),
                Cell::Num(n) => write!(out, "<td class=\"num\">{}</td>", escape(n)),
            };
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if hidden > 0 {
        let _ = write!(
            out,
            "<p class=\"more\" id=\"{}-hidden\">{hidden} more not shown (see the JSON at /status)</p>",
            escape(id)
        );
    }
    out
}

/// Big figures across the top: (id, label, value) each.
pub fn tiles(items: &[(&str, &str, String)]) -> String {
    let mut out = String::from("<div class=\"tiles\">");
    for (id, label, value) in items {
        let _ = write!(
            out,
            "<div class=\"tile\"><div class=\"label\">{}</div><div class=\"value\" id=\"{}\">{}</div></div>",
            escape(label),
            escape(id),
            escape(value)
        );
    }
    out.push_str("</div>");
    out
}

/// A whole page: `title`, a subtitle line, sections of HTML, refreshed
/// every `refresh_secs`.
pub fn document(
    title: &str,
    subtitle: &str,
    sections: &[(&str, String)],
    refresh_secs: u32,
) -> String {
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{refresh_secs}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><header><h1>{}</h1><p>{}</p></header><main>",
        escape(title),
        escape(title),
        escape(subtitle)
    );
    for (heading, html) in sections {
        if heading.is_empty() {
            out.push_str(html);
        } else {
            let _ = write!(out, "<section><h2>{}</h2>{html}</section>", escape(heading));
        }
    }
    out.push_str("</main></body></html>");
    out
}

const STYLE: &str = "\
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--accent:#2f6fed;--bg:#f7f8fa}\
*{box-sizing:border-box}\
body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);background:var(--bg)}\
header{background:#fff;border-bottom:1px solid var(--line);padding:16px 28px}\
header h1{margin:0;font-size:20px}header p{margin:2px 0 0;color:var(--muted)}\
main{padding:20px 28px;max-width:1200px}\
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:0 0 18px}\
h2{font-size:15px;margin:0 0 10px}\
.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 18px}\
.tile{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 16px;min-width:170px}\
.tile .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}\
.tile .value{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}\
table{border-collapse:collapse;width:100%}\
th{text-align:left;color:var(--muted);font-weight:500;font-size:12px;border-bottom:1px solid var(--line);padding:6px 8px}\
td{border-bottom:1px solid var(--line);padding:6px 8px;vertical-align:middle}\
td.num,.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
th.num{text-align:right}\
td.none{color:var(--muted);text-align:center}\
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}\
.bar{display:inline-block;width:140px;height:10px;background:var(--line);border-radius:5px;overflow:hidden;vertical-align:middle}\
.bar span{display:block;height:100%;background:var(--accent)}\
.more{color:var(--muted);margin:8px 0 0}\
.ok{color:#12805c}.bad{color:#c4320a}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_sizes_are_human() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(20 << 30), "20.0 GiB");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3 * 86_400 + 4 * 3600), "3d 4h");
        assert_eq!(percent(1.7), "100.0 %");
    }

    #[test]
    fn tables_say_how_many_rows_are_hidden() {
        let html = table(
            "swarms",
            &["blob", "size"],
            &[vec![Cell::Text("<x>".into()), Cell::Num("1".into())]],
            3,
        );
        assert!(html.contains("&lt;x&gt;"));
        assert!(html.contains("3 more not shown"));
        let page = document("t", "s", &[("", html)], 5);
        assert!(page.contains("http-equiv=\"refresh\" content=\"5\""));
        assert!(!page.contains("<script"));
    }
}
