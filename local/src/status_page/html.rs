//! HTML building blocks: escaping, the page shell (inline CSS, self-refresh), time
//! formatting. Every value that comes from the store is written through [`Esc`].

use std::fmt::{self, Display, Write};
use wa_shared::domain::{MessageState, Timestamp};

/// How often the page reloads itself, in seconds.
pub(super) const REFRESH_SECS: u32 = 2;

/// Writes its text HTML-escaped (safe in element content and in quoted attributes).
pub(super) struct Esc<'a>(pub &'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// An instant as the page shows it: `2026-06-03 10:15:30.123` (UTC), inside a `<time>`.
pub(super) struct Time(pub Timestamp);

impl Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Rfc3339(&self.0.to_rfc3339()))
    }
}

/// Like [`Time`], for an instant already rendered as RFC 3339 (the API view's times).
pub(super) struct Rfc3339<'a>(pub &'a str);

impl Display for Rfc3339<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.trim_end_matches('Z').replacen('T', " ", 1);
        write!(
            f,
            "<time datetime=\"{}\">{}</time>",
            Esc(self.0),
            Esc(&shown)
        )
    }
}

/// A state as a coloured badge.
pub(super) struct Badge(pub MessageState);

impl Display for Badge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_str();
        write!(f, "<span class=\"badge st-{s}\">{s}</span>")
    }
}

/// The whole document: head (inline CSS, refresh), header line, then `body`.
pub(super) fn page(
    out: &mut String,
    now: Timestamp,
    body: impl FnOnce(&mut String) -> fmt::Result,
) -> fmt::Result {
    write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>wa dev · status</title>\
         <noscript><meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\"></noscript>\
         <style>{CSS}</style></head><body>\
         <header><h1><a href=\"/\">wa dev</a></h1>\
         <p class=\"muted\">status · refreshes every {REFRESH_SECS} s · as of {now} UTC</p></header><main>",
        now = Time(now),
    )?;
    body(out)?;
    // Reload every REFRESH_SECS, keeping the scroll position (the selected message is
    // in the URL, so it stays selected); skip while the tab is hidden.
    writeln!(
        out,
        "</main><script>(function(){{var k='wa-status-scroll:'+location.pathname,\
         y=sessionStorage.getItem(k);if(y!==null){{sessionStorage.removeItem(k);\
         window.scrollTo(0,+y);}}setInterval(function(){{if(document.hidden)return;\
         sessionStorage.setItem(k,String(window.scrollY));location.reload();}},{ms});}})();\
         </script></body></html>",
        ms = REFRESH_SECS * 1000,
    )
}

const CSS: &str = "
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;background:#f6f8fa}
header{display:flex;align-items:baseline;gap:1em;padding:.6em 1.2em;background:#24292f;color:#fff}
header h1{margin:0;font-size:18px}header a{color:#fff;text-decoration:none}
header .muted{color:#c9d1d9}
main{padding:1em 1.2em;display:grid;gap:1.2em}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.8em 1em;overflow-x:auto}
h2{margin:0 0 .6em;font-size:15px}h3{margin:1em 0 .4em;font-size:14px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #eaeef2;white-space:nowrap;vertical-align:top}
thead th{font-weight:600;color:#57606a;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.zero{color:#b6bec7}
tfoot td,tfoot th{font-weight:600;border-top:2px solid #d0d7de}
tr.selected td{background:#fff8c5}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
.clip{display:inline-block;max-width:16em;overflow:hidden;text-overflow:ellipsis;vertical-align:bottom}
.muted{color:#57606a}
a{color:#0969da}
.badge{display:inline-block;padding:0 .5em;border-radius:1em;font-size:12px;font-weight:600;color:#fff;background:#6e7781}
.st-sending{background:#0969da}.st-accepted{background:#8250df}.st-sent{background:#1b7c83}
.st-delivered{background:#1a7f37}.st-read{background:#116329}.st-failed{background:#cf222e}
.st-suppressed{background:#bc4c00}
.flag{display:inline-block;padding:0 .5em;border-radius:3px;font-size:12px;background:#ffebe9;color:#a40e26;border:1px solid #ff818266}
.late{background:#fff8c5;color:#7d4e00;border-color:#d4a72c66}
.fail{color:#a40e26}
dl.facts{display:grid;grid-template-columns:max-content minmax(0,1fr) max-content minmax(0,1fr);gap:.2em 1em;margin:0}
td.details{white-space:normal;min-width:20em}
ol.chain{display:flex;flex-wrap:wrap;gap:.3em .6em;list-style:none;margin:0;padding:0}
ol.chain li+li::before{content:'→';color:#57606a;margin-right:.6em}
dl.facts dt{color:#57606a}dl.facts dd{margin:0}
.empty{text-align:center;padding:2em 1em}
.empty pre{display:inline-block;text-align:left;background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.8em 1em;white-space:pre-wrap}
.panel-head{display:flex;justify-content:space-between;align-items:baseline}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes_and_keeps_the_rest() {
        assert_eq!(
            Esc(r#"<a href="x" title='y'>Tom & Jerry</a> ✓"#).to_string(),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt; ✓"
        );
        assert_eq!(Esc("").to_string(), "");
        assert_eq!(Esc("plain").to_string(), "plain");
    }

    #[test]
    fn times_show_utc_without_the_t_and_keep_rfc3339_in_the_attribute() {
        let t = Time(Timestamp::from_millis(1_780_481_730_123)).to_string();
        assert_eq!(
            t,
            "<time datetime=\"2026-06-03T10:15:30.123Z\">2026-06-03 10:15:30.123</time>"
        );
    }

    #[test]
    fn the_page_refreshes_itself_with_and_without_javascript() {
        let mut out = String::new();
        page(&mut out, Timestamp::from_secs(0), |o| {
            o.write_str("<p>x</p>")
        })
        .unwrap();
        assert!(out.starts_with("<!doctype html>"));
        assert!(out.contains("<noscript><meta http-equiv=\"refresh\" content=\"2\"></noscript>"));
        assert!(out.contains("location.reload()") && out.contains(",2000)"));
        assert!(out.contains("<main><p>x</p></main>"));
    }
}
