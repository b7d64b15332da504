//! Section 2: catch-up bytes of set reconciliation (`dn_proto::recon::figures`).

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::json;

use crate::{Ctx, Section};

/// Goal: reconciliation bytes (both directions, payload excluded) for 10 differences.
const GOAL_BYTES_10: usize = 2000;

/// negentropy 0.5.3, 100,000 items each side (ANCHORS.md): (scenario, bytes, round trips).
fn negentropy(scenario: &str) -> Option<(usize, &'static str)> {
    match scenario {
        "100k/10 spread" => Some((13_900, "2 RT")),
        "100k/10 recent" => Some((1_800, "")),
        "100k/1,000 spread" => Some((787_000, "")),
        "100k/1,000 recent" => Some((22_000, "")),
        "naive id list, 100k each way" => Some((6_400_000, "3.2 MB each way")),
        _ => None,
    }
}

fn human(bytes: usize) -> String {
    if bytes >= 1_000_000 {
        format!("{:.2} MB", bytes as f64 / 1e6)
    } else if bytes >= 1_000 {
        format!("{:.1} KB", bytes as f64 / 1e3)
    } else {
        format!("{bytes} B")
    }
}

pub(crate) fn run(ctx: &Ctx) -> Result<Section> {
    ctx.note("recon: figures() on 100,000-message sets ...");
    let rows = dn_proto::recon::figures();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "== 2. Catch-up bytes (set reconciliation, dn_proto::recon::figures)"
    );
    let _ = writeln!(
        text,
        "   Two stores share 100,000 messages (1 s apart); \"N spread\" = N/2 extra on each side at \
         random times in history, \"recent\" = newer than all; bytes = every reconciliation \
         message, both directions, the differing messages themselves excluded; salted 8-byte \
         short ids, IBLT sketches. (Always full size: --quick does not shrink it.)"
    );
    let _ = writeln!(
        text,
        "   goal: ≤ {GOAL_BYTES_10} B for 10 differences, spread or recent; naive id list = 32 B × 100k each way."
    );
    let _ = writeln!(
        text,
        "   {:<34} {:>6} {:>10} {:>5} {:>12} {:>6} {:>16} {:>7}",
        "scenario", "diffs", "half-trips", "msgs", "bytes", "exact", "negentropy 0.5.3", "goal"
    );
    let mut out = Vec::new();
    for f in &rows {
        let ten = f.differences == 10 && !f.scenario.contains("naive");
        let met = f.exact && f.bytes <= GOAL_BYTES_10;
        let goal = if ten {
            if met {
                "met"
            } else {
                "MISSED"
            }
        } else {
            "-"
        };
        let neg = negentropy(&f.scenario);
        let _ = writeln!(
            text,
            "   {:<34} {:>6} {:>10} {:>5} {:>12} {:>6} {:>16} {:>7}",
            f.scenario,
            f.differences,
            f.half_trips,
            f.messages,
            human(f.bytes),
            if f.exact { "yes" } else { "NO" },
            neg.map_or_else(|| "-".to_owned(), |(b, _)| human(b)),
            goal,
        );
        out.push(json!({
            "scenario": f.scenario,
            "differences": f.differences,
            "half_trips": f.half_trips,
            "messages": f.messages,
            "bytes": f.bytes,
            "exact": f.exact,
            "negentropy_bytes": neg.map(|(b, _)| b),
            "goal_met": if ten { json!(met) } else { serde_json::Value::Null },
        }));
    }
    Ok(Section {
        text,
        json: json!({ "goal_bytes_10_differences": GOAL_BYTES_10, "rows": out }),
    })
}
