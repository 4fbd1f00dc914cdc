//! `pulse plot thought-space`: where rationales and behaviours of several domains fall in the Thought
//! Space, as a 2-D PCA picture.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use pulse_data::Rng;

use crate::eval::{load_data, DataSpec};
use crate::util::open_existing_store;

static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

const COLOURS: [RGBColor; 4] = [RGBColor(214, 39, 40), RGBColor(31, 119, 180), RGBColor(44, 160, 44), RGBColor(148, 103, 189)];

struct Domain {
    name: String,
    rationales: Vec<String>,
    behaviours: Vec<String>,
    by_method: Vec<(String, usize)>,
}

/// Up to `users` (rationale, behaviour) pairs of one dataset, the first available method per user.
fn domain_pairs(data: &Path, store: &Path, methods: &[String], users: usize, seed: u64) -> Result<Domain> {
    let st = open_existing_store(store)?;
    let l = load_data(&DataSpec { path: data.to_path_buf(), format: Default::default(), interactions_file: None, dedup: false, kcore: 0 })?;
    let titles: HashMap<&str, &str> = l.ds.items.iter().map(|it| (it.id.as_str(), it.title.as_str())).collect();
    let mut seen = HashSet::new();
    let mut pairs = Vec::new();
    let mut by_method = Vec::new();
    for m in methods {
        let mut n = 0;
        for r in st.records(Some(m))? {
            if r.key.dataset != l.ds.name || seen.contains(&r.key.user) {
                continue;
            }
            let (Some(rat), Some(chosen)) = (r.rationale, titles.get(r.key.target.as_str())) else { continue };
            let hist: Vec<&str> = r.history.iter().filter_map(|h| titles.get(h.as_str()).copied()).collect();
            seen.insert(r.key.user.clone());
            pairs.push((r.key.user.clone(), rat, pulse_thought::train::behaviour_text(&hist, chosen)));
            n += 1;
        }
        by_method.push((m.clone(), n));
    }
    if pairs.is_empty() {
        bail!("{}: no {methods:?} rationales for {}", store.display(), l.ds.name);
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    Rng::derive(seed, "plot-users").shuffle(&mut pairs);
    pairs.truncate(users);
    let (rationales, behaviours) = pairs.into_iter().map(|(_, r, b)| (r, b)).unzip();
    Ok(Domain { name: l.ds.name.clone(), rationales, behaviours, by_method })
}

/// What `pulse plot thought-space` draws: a trained space, its encoder, `DATA_DIR=STORE` domains, the
/// rationale methods in order of preference, users sampled per domain, the seed and the PNG to write.
pub struct ThoughtSpacePlot<'a> {
    pub space: &'a Path,
    pub encoder: &'a Path,
    pub domain: &'a [String],
    pub methods: &'a [String],
    pub users: usize,
    pub seed: u64,
    pub out: &'a Path,
}

/// Draws the picture (PNG + JSON sidecar); returns the report line.
pub fn thought_space(a: &ThoughtSpacePlot<'_>) -> Result<String> {
    let ThoughtSpacePlot { space, encoder, domain, methods, users, seed, out } = *a;
    let specs: Vec<(PathBuf, PathBuf)> = domain
        .iter()
        .map(|d| {
            d.split_once('=')
                .map(|(a, b)| (PathBuf::from(a), PathBuf::from(b)))
                .with_context(|| format!("--domain {d}: expected DATA_DIR=STORE"))
        })
        .collect::<Result<_>>()?;
    if out.extension().and_then(|e| e.to_str()) != Some("png") {
        bail!("--out {}: must end in .png", out.display());
    }
    let enc = pulse_thought::SentenceEncoder::load(&encoder, 128)?;
    let sp = pulse_thought::train::load(&space, &enc)?;
    let domains: Vec<Domain> = specs.iter().map(|(d, s)| domain_pairs(d, s, &methods, users, seed)).collect::<Result<_>>()?;
    // All points of all domains in one PCA: rationales then behaviours, domain by domain.
    let mut rows = Vec::new();
    for d in &domains {
        let r: Vec<&str> = d.rationales.iter().map(String::as_str).collect();
        let b: Vec<&str> = d.behaviours.iter().map(String::as_str).collect();
        rows.extend(sp.apply(&enc.encode(&r, 32)?, true)?);
        rows.extend(sp.apply(&enc.encode(&b, 32)?, false)?);
    }
    let xy = pulse_thought::pca::pca2(&rows);
    let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
    for p in &xy {
        for k in 0..2 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    let pad = |k: usize| 0.05 * (hi[k] - lo[k]).max(1e-3);
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).map_err(|_| anyhow::anyhow!("bundled font unreadable"))?;
    if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = out.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (1200, 900)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Thought Space (PCA): rationales R(·) ●, behaviours B(·) ✕", ("sans-serif", 28))
            .margin(20)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(lo[0] - pad(0)..hi[0] + pad(0), lo[1] - pad(1)..hi[1] + pad(1))?;
        chart.configure_mesh().x_desc("PC 1").y_desc("PC 2").label_style(("sans-serif", 16)).draw()?;
        let mut at = 0;
        for (i, d) in domains.iter().enumerate() {
            let c = COLOURS[i % COLOURS.len()];
            let n = d.rationales.len();
            let r = &xy[at..at + n];
            let b = &xy[at + n..at + 2 * n];
            at += 2 * n;
            chart
                .draw_series(r.iter().map(|p| Circle::new((p[0], p[1]), 3, c.mix(0.7).filled())))?
                .label(format!("{} rationales ({n})", d.name))
                .legend(move |(x, y)| Circle::new((x, y), 4, c.filled()));
            chart
                .draw_series(b.iter().map(|p| Cross::new((p[0], p[1]), 4, c.mix(0.7).stroke_width(1))))?
                .label(format!("{} behaviours ({n})", d.name))
                .legend(move |(x, y)| Cross::new((x, y), 4, c.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 18))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        root.present()?;
    }
    std::fs::rename(&tmp, &out)?;
    let side = serde_json::json!({
        "space": space,
        "encoder": enc.id(),
        "methods": methods,
        "users_per_domain": users,
        "seed": seed,
        "domains": domains.iter().zip(&specs).map(|(d, (data, store))| serde_json::json!({
            "dataset": d.name, "data": data, "store": store, "points": d.rationales.len(), "available_by_method": d.by_method,
        })).collect::<Vec<_>>(),
    });
    pulse_eval::write_atomic(&out.with_extension("json"), serde_json::to_string_pretty(&side)?.as_bytes())?;
    Ok(format!("{} → {}", domains.iter().map(|d| format!("{}: {} users", d.name, d.rationales.len())).collect::<Vec<_>>().join(", "), out.display()))
}
