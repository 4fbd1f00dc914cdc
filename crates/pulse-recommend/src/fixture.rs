//! A small synthetic bundle with random weights, for tests of everything above the engine (the CLI,
//! the server, the page): real files in the real format, loaded by the real [`crate::Engine`]. Not a
//! model of anything; `pulse fit` writes the real ones.
use crate::bundle::{Array, BundleWriter, DatasetInfo, Manifest};
use crate::engine::{CatalogueItem, KnnSettings, ProfileSettings, Settings, UserRow};
use crate::parts::Knn;
use crate::Result;
use pulse_data::Rng;
use std::path::Path;

/// Uniform values in [-scale, scale).
fn uniform(r: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| (r.next_f32() * 2.0 - 1.0) * scale).collect()
}

/// Titles of the fixture: item 0 carries markup (a page must show it as text).
pub const SCRIPT_TITLE: &str = "<script>alert(1)</script> Rose & Oud Face Serum";

/// Writes a bundle of `n_items` items and 60 users to `out` (hidden size 8, 2 blocks, 2 heads).
pub fn write_tiny(out: &Path, n_items: usize, seed: u64) -> Result<Manifest> {
    let mut r = Rng::new(seed);
    let words = ["Rose", "Oud", "Vitamin C", "Retinol", "Argan", "Matte", "Hydrating", "Night", "Clay", "Silk"];
    let kinds = ["Serum", "Cream", "Shampoo", "Mask", "Lipstick", "Toner"];
    let items: Vec<CatalogueItem> = (0..n_items)
        .map(|i| CatalogueItem {
            id: format!("I{i:03}"),
            title: if i == 0 { SCRIPT_TITLE.to_string() } else { format!("{} {} {}", words[i % words.len()], kinds[(i / 3) % kinds.len()], i) },
            asin: None,
        })
        .collect();
    // users walk forward through the catalogue, so neighbours co-occur
    let users: Vec<UserRow> = (0..60)
        .map(|u| {
            let start = (u * 7) % n_items;
            let len = 3 + u % 6;
            UserRow { id: format!("U{u:02}"), items: (0..len).map(|j| ((start + j * (1 + u % 2)) % n_items) as u32).collect() }
        })
        .collect();
    let (d, dim, max_len) = (8usize, 6usize, 10usize);
    let mut w = BundleWriter::create(out)?;
    w.put_json_lines("catalogue.jsonl", &items)?;
    w.put_json_lines("users.jsonl", &users)?;
    let text = uniform(&mut r, n_items * dim, 1.0);
    let xy = uniform(&mut r, n_items * 2, 1.0);
    w.put_arrays("item_text.safetensors", &[("text", Array::f32(&[n_items, dim], text)), ("xy", Array::f32(&[n_items, 2], xy))])?;
    let mut arrays: Vec<(String, Array)> = vec![
        ("items".into(), Array::f32(&[n_items, d], uniform(&mut r, n_items * d, 0.5))),
        ("pos_emb".into(), Array::f32(&[max_len, d], uniform(&mut r, max_len * d, 0.1))),
        ("lnf.g".into(), Array::f32(&[d], vec![1.0; d])),
        ("lnf.b".into(), Array::f32(&[d], vec![0.0; d])),
    ];
    for b in 0..2 {
        for (n, len) in [("wq", d * d), ("wk", d * d), ("wv", d * d), ("wo", d * d), ("w1", d * d), ("w2", d * d)] {
            arrays.push((format!("b{b}.{n}"), Array::f32(&[d, d], uniform(&mut r, len, 0.3))));
        }
        for n in ["bq", "bk", "bv", "bo", "c1", "c2", "ln1.b", "ln2.b"] {
            arrays.push((format!("b{b}.{n}"), Array::f32(&[d], uniform(&mut r, d, 0.05))));
        }
        for n in ["ln1.g", "ln2.g"] {
            arrays.push((format!("b{b}.{n}"), Array::f32(&[d], vec![1.0; d])));
        }
    }
    w.put_arrays("pulse_ts.safetensors", &arrays)?;
    let seqs: Vec<&[u32]> = users.iter().map(|u| u.items.as_slice()).collect();
    let knn = Knn::fit(&seqs, n_items, 3, 10, 0.8);
    let mut pop = vec![0f32; n_items];
    users.iter().flat_map(|u| &u.items).for_each(|&i| pop[i as usize] += 1.0);
    w.put_arrays("neighbours.safetensors", &knn.bundle_arrays(pop))?;
    let p = ProfileSettings { last: 10, decay: 0.8 };
    let settings = Settings {
        sequence_model: "pulse-ts-norat".into(),
        heads: 2,
        blocks: 2,
        gelu: false,
        content: p,
        itemknn: KnnSettings { window: 3, last: 10, decay: 0.8 },
        lexical: p,
        hybrid_parts: ["pulse-ts", "content", "itemknn", "lexical", "pop"].map(String::from).to_vec(),
        hybrid_weights: vec![0.4, 0.2, 0.25, 0.1, 0.05],
    };
    let n_interactions = users.iter().map(|u| u.items.len()).sum();
    w.finish(Manifest {
        format_version: 0,
        name: "fixture".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        code_version: "fixture".into(),
        seed,
        dataset: DatasetInfo { name: "fixture".into(), split_fingerprint: "none".into(), n_items, n_users: users.len(), n_interactions },
        models: serde_json::json!({ "serving": settings }),
        files: Default::default(),
    })
}
