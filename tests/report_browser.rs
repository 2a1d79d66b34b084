//! End to end in real headless Chromium: the report and the comparison
//! load with no console error, no request beyond the file itself, every
//! chart's SVG has a non-zero size and visibly drawn data paths, nothing
//! overflows at phone width or in print, and full-page screenshots are saved under
//! `target/tmp/report-browser/` for people to look at.
//!
//! Chromium is required: without it this test fails (scripts/test installs it).

mod report_common;

use std::path::Path;
use std::time::Duration;

use bench::report::{render_comparison, render_report, LabeledRun};
use report_common::chromium::{chromium_path, Browser};
use serde_json::Value;

/// Measures every chart in the page; run inside the browser.
const MEASURE: &str = r#"(() => {
  const figures = [...document.querySelectorAll('figure.chart')];
  const isData = (p) => (p.getAttribute('points') || '').trim().split(/\s+/).length >= 3;
  return {
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    verdict: !!document.querySelector('#verdict') || !!document.querySelector('#deltas'),
    charts: figures.map((f) => {
      const svg = f.querySelector('svg');
      const r = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
      const lines = svg ? [...svg.querySelectorAll('polyline')].filter(isData) : [];
      const dots = svg ? [...svg.querySelectorAll('circle')] : [];
      const drawn = [...lines, ...dots].filter((el) => {
        const b = el.getBBox();
        return b.width > 0 || b.height > 0;
      });
      return {
        id: f.dataset.chart,
        hasData: f.dataset.hasData === 'true',
        width: r.width,
        height: r.height,
        dataPaths: lines.length + dots.length,
        drawnDataPaths: drawn.length,
        texts: svg ? svg.querySelectorAll('text').length : 0,
      };
    }),
  };
})()"#;

/// Asserts that the page measured by [`MEASURE`] does not scroll sideways
/// and that every chart is drawn wider than 100 px (and, when
/// `charts_within_page`, no wider than the page).
fn assert_fits(name: &str, layout: &str, m: &Value, charts_within_page: bool) {
    let (inner, scroll) = (
        m["innerWidth"].as_f64().unwrap_or(0.0),
        m["scrollWidth"].as_f64().unwrap_or(f64::MAX),
    );
    assert!(
        scroll <= inner + 1.0,
        "{name}: page overflows at {layout} ({scroll} > {inner})"
    );
    for c in m["charts"].as_array().cloned().unwrap_or_default() {
        let w = c["width"].as_f64().unwrap_or(0.0);
        assert!(
            w > 100.0 && (!charts_within_page || w <= inner),
            "{name}: chart width {w} at {layout}: {c}"
        );
    }
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Loads `page` at desktop and phone widths and asserts on what rendered.
async fn check_page(
    browser: &mut Browser,
    page: &Path,
    shots: &Path,
    name: &str,
) -> anyhow::Result<usize> {
    browser.viewport(1280, 900, false).await?;
    browser.open(&file_url(page)).await?;
    let m = browser.eval(MEASURE).await?;
    let charts = m["charts"].as_array().cloned().unwrap_or_default();
    assert!(
        charts.len() >= 8,
        "{name}: only {} charts: {m}",
        charts.len()
    );
    assert_eq!(
        m["verdict"],
        Value::Bool(true),
        "{name}: headline section missing"
    );
    for c in &charts {
        let id = c["id"].as_str().unwrap_or("?");
        assert_eq!(c["hasData"], Value::Bool(true), "{name}/{id}: no data");
        assert!(
            c["width"].as_f64().unwrap_or(0.0) > 100.0,
            "{name}/{id}: svg width {c}"
        );
        assert!(
            c["height"].as_f64().unwrap_or(0.0) > 100.0,
            "{name}/{id}: svg height {c}"
        );
        assert!(
            c["dataPaths"].as_u64().unwrap_or(0) >= 1,
            "{name}/{id}: no data paths {c}"
        );
        assert!(
            c["drawnDataPaths"].as_u64().unwrap_or(0) >= 1,
            "{name}/{id}: data paths not drawn {c}"
        );
        assert!(
            c["texts"].as_u64().unwrap_or(0) >= 6,
            "{name}/{id}: no title/axes/legend {c}"
        );
    }
    std::fs::write(
        shots.join(format!("{name}.png")),
        browser.screenshot_full_page().await?,
    )?;

    // Phone width: the page itself must not scroll sideways (wide tables and
    // charts scroll inside their own boxes), and charts still render.
    browser.viewport(390, 844, true).await?;
    let m = browser.eval(MEASURE).await?;
    assert_fits(name, "phone width", &m, false);
    std::fs::write(
        shots.join(format!("{name}-phone.png")),
        browser.screenshot_full_page().await?,
    )?;

    // Print: at A4 width (794 CSS px) with print styles, charts shrink to
    // the page instead of overflowing it.
    browser
        .call(
            "Emulation.setEmulatedMedia",
            serde_json::json!({ "media": "print" }),
        )
        .await?;
    browser.viewport(794, 1123, false).await?;
    let m = browser.eval(MEASURE).await?;
    assert_fits(name, "print layout", &m, true);
    browser
        .call(
            "Emulation.setEmulatedMedia",
            serde_json::json!({ "media": "" }),
        )
        .await?;
    Ok(charts.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_and_comparison_render_in_headless_chromium() {
    let chromium = chromium_path();
    assert!(
        chromium.exists(),
        "{} not found: this test needs the Debian chromium package (scripts/test installs it)",
        chromium.display()
    );
    // Pages and screenshots stay under target/tmp for people to open.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    std::fs::create_dir_all(&shots).expect("mkdir");
    let dir = tempfile::tempdir().expect("tempdir");
    let report = shots.join("report.html");
    let run = report_common::fixture_run("quickstart", 1, 1.0);
    std::fs::write(&report, render_report(&run).expect("render")).expect("write");
    let comparison = shots.join("comparison.html");
    let runs = vec![
        LabeledRun {
            label: "before".into(),
            results: run,
        },
        LabeledRun {
            label: "after".into(),
            results: report_common::fixture_run("quickstart", 2, 2.0),
        },
    ];
    std::fs::write(&comparison, render_comparison(&runs).expect("render")).expect("write");
    // Loopback only, on the discard port: the request fails, which is the point.
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><title>control</title><img src=\"http://127.0.0.1:9/x.png\"><script>console.error('deliberate')</script>",
    )
    .expect("write");

    let outcome = tokio::time::timeout(Duration::from_secs(120), async {
        let mut browser = Browser::launch(&chromium).await?;
        let n_report = check_page(&mut browser, &report, &shots, "report").await?;
        let n_compare = check_page(&mut browser, &comparison, &shots, "comparison").await?;
        // Control: a page that does fetch and does log errors must be caught
        // by the same checks, or the assertions below prove nothing.
        let control_from = browser.events.len();
        browser.open(&file_url(&control)).await?;
        let control_problems = browser.problems(control_from);
        let control_requests = browser.requests(control_from);
        assert!(
            control_problems.iter().any(|p| p.contains("deliberate")),
            "console errors are not detected: {control_problems:#?}"
        );
        assert!(
            control_requests
                .iter()
                .any(|u| u.starts_with("http://127.0.0.1:9/")),
            "fetches are not detected: {control_requests:?}"
        );
        anyhow::Ok((browser, n_report, n_compare, control_from))
    })
    .await
    .expect("headless Chromium did not finish within 120 s");
    let (browser, n_report, n_compare, control_from) = outcome.expect("driving Chromium");
    let mut browser = browser;
    browser.events.truncate(control_from);
    assert_eq!(n_report, 10);
    assert_eq!(n_compare, 10);

    let problems = browser.problems(0);
    assert!(problems.is_empty(), "console errors: {problems:#?}");
    let requests = browser.requests(0);
    let allowed = [file_url(&report), file_url(&comparison)];
    let foreign: Vec<&String> = requests.iter().filter(|u| !allowed.contains(u)).collect();
    assert!(
        foreign.is_empty(),
        "the report fetched something: {foreign:?}"
    );
    assert!(
        requests.len() >= 2,
        "navigation requests were not observed: {requests:?}"
    );
    for shot in ["report.png", "report-phone.png", "comparison.png"] {
        let len = std::fs::metadata(shots.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 20_000, "{shot} looks empty ({len} bytes)");
    }
    eprintln!("pages and screenshots in {}", shots.display());
}
