//! Helpers that inspect generated report HTML as text (no HTML parser
//! needed: the report's markup is ours and regular).

/// The `<figure>` of chart `id`, if present.
pub fn figure<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let start = html.find(&format!("<figure class=\"chart\" id=\"chart-{id}\""))?;
    let len = html[start..].find("</figure>")?;
    Some(&html[start..start + len])
}

/// Ids of every chart figure, in page order.
pub fn chart_ids(html: &str) -> Vec<String> {
    html.match_indices("data-chart=\"")
        .filter_map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

/// Data marks in an SVG: polylines with at least `min_points` vertices
/// (axes and grid lines have two) plus scatter circles.
pub fn data_marks(svg: &str, min_points: usize) -> usize {
    let lines = svg
        .split("<polyline")
        .skip(1)
        .filter(|el| {
            el.split("points=\"")
                .nth(1)
                .and_then(|p| p.split('"').next())
                .is_some_and(|p| p.split_whitespace().count() >= min_points)
        })
        .count();
    lines + svg.matches("<circle").count()
}

/// Every `src=`, `href=` and CSS `url(` value in the document.
pub fn referenced_urls(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\"", "src='", "href='", "url("] {
        for (i, m) in html.match_indices(attr) {
            let rest = &html[i + m.len()..];
            let end = rest.find(['"', '\'', ')']).unwrap_or(rest.len());
            out.push(rest[..end].to_string());
        }
    }
    out
}

/// The trimmed contents of every SVG `<text>` element in `fragment`.
pub fn svg_texts(fragment: &str) -> Vec<String> {
    fragment
        .split("<text")
        .skip(1)
        .filter_map(|el| {
            let body = &el[el.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// True when some SVG text in `fragment` equals `wanted` (after trimming)
/// or, with a trailing `*`, starts with it.
pub fn has_text(fragment: &str, wanted: &str) -> bool {
    svg_texts(fragment)
        .iter()
        .any(|t| match wanted.strip_suffix('*') {
            Some(prefix) => t.starts_with(prefix),
            None => t == wanted,
        })
}
