//! all-MiniLM-L6-v2 in candle against reference embeddings from Hugging Face transformers (an independent
//! BERT and tokenizer) on the same files, produced by
//!   bench/recbole/.venv/bin/python bench/encoder/reference_embeddings.py models/all-MiniLM-L6-v2
//! (torch 2.5.1, transformers 4.46.3): mean pooling over the mask, L2-normalised. [CLS] pooling (bge's) is
//! checked against a numpy BERT on the same weights (below).

use std::path::PathBuf;

use pulse_thought::{cosine, EmbeddingCache, Pooling, SentenceEncoder, DEFAULT_ENCODER};

fn dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(DEFAULT_ENCODER);
    assert!(d.join("model.safetensors").is_file(), "{} missing: run `bash scripts/fetch_models.sh` first", d.display());
    d
}

const SENTENCES: [&str; 3] = [
    "This shopper loves gentle, fragrance-free skin care.",
    "Crabtree & Evelyn - Gardener's Ultra-Moisturising Hand Therapy Pump - 250g/8.8 OZ",
    "[CONTEXT] History: Rose Lip Balm; Argan Oil Shampoo [CHOSEN_ITEM] Vitamin C Serum",
];
const FIRST8: [[f32; 8]; 3] = [
    [-0.017292, 0.036256, 0.077177, 0.053983, 0.082276, 0.029967, 0.067325, -0.006812],
    [-0.014901, 0.025451, 0.032809, 0.019429, -0.0081, -0.022497, 0.042511, 0.043157],
    [-0.141649, -0.023846, -0.075901, 0.017822, 0.062565, 0.062444, 0.0361, 0.075221],
];
const RAMP_DOT: [f32; 3] = [0.404164, 0.385002, 0.198966];

/// SENTENCES encoded in one padded batch match a reference (first 8 dimensions to 2e-5, the dot with a
/// ramp to 1e-4), are unit length, and agree with each sentence encoded alone (padding moves nothing).
fn assert_reference(enc: &SentenceEncoder, first8: &[[f32; 8]; 3], ramp_dot: &[f32; 3]) {
    let together = enc.encode(&SENTENCES, 8).unwrap();
    for (i, e) in together.iter().enumerate() {
        let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        for (k, (&got, &want)) in e.iter().zip(&first8[i]).enumerate() {
            assert!((got - want).abs() < 2e-5, "sentence {i} dim {k}: {got} vs reference {want}");
        }
        let ramp: f32 = e.iter().enumerate().map(|(k, x)| x * k as f32 / e.len() as f32).sum();
        assert!((ramp - ramp_dot[i]).abs() < 1e-4, "sentence {i}: ramp dot {ramp} vs {}", ramp_dot[i]);
        let alone = enc.encode(&SENTENCES[i..i + 1], 1).unwrap();
        assert!(cosine(&alone[0], e) > 0.99999);
    }
}

#[test]
fn minilm_matches_transformers_reference() {
    let enc = SentenceEncoder::load(&dir(), 128).unwrap();
    assert_eq!(enc.dim(), 384);
    assert_reference(&enc, &FIRST8, &RAMP_DOT);
    // Related texts are closer than unrelated ones.
    let v = enc.encode(&["moisturising hand cream", "hand lotion for dry skin", "graphics card for gaming"], 4).unwrap();
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.2);
}

/// [CLS] pooling (the bge models' recipe), checked on all-MiniLM-L6-v2's weights because no bge weights can be
/// fetched here: the reference is a numpy BERT, produced by
///   python bench/encoder/reference_pooling_numpy.py models/all-MiniLM-L6-v2
/// (numpy 2.4.6, tokenizers 0.23.3), whose mean-pooled rows reproduce FIRST8 / RAMP_DOT above to 1e-6.
const CLS_FIRST8: [[f32; 8]; 3] = [
    [-0.001973, 0.003787, 0.054045, 0.026075, 0.061022, -0.022227, -0.012367, -0.023603],
    [-0.022136, 0.006223, 0.019568, 0.012674, 0.033708, -0.004651, -0.005028, 0.021658],
    [-0.055009, -0.041485, -0.037427, 0.003131, 0.031193, 0.04984, 0.01424, 0.046345],
];
const CLS_RAMP_DOT: [f32; 3] = [0.023481, 0.39727, 0.038255];

/// A sentence-transformers folder: the default encoder's files linked in, and `1_Pooling/config.json`.
fn folder_with_pooling(pooling_json: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::os::unix::fs::symlink(dir().join(f).canonicalize().unwrap(), d.path().join(f)).unwrap();
    }
    std::fs::create_dir(d.path().join("1_Pooling")).unwrap();
    std::fs::write(d.path().join("1_Pooling/config.json"), pooling_json).unwrap();
    d
}

#[test]
fn cls_pooling_matches_numpy_reference() {
    let d = folder_with_pooling(r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#);
    let enc = SentenceEncoder::load(d.path(), 128).unwrap();
    let mean = SentenceEncoder::load(&dir(), 128).unwrap();
    assert_eq!((enc.pooling(), mean.pooling()), (Pooling::Cls, Pooling::Mean));
    // Same weights, another pooling: caches and spaces must not mix them up.
    assert_eq!(enc.id(), format!("{}-cls", mean.id()));
    assert_reference(&enc, &CLS_FIRST8, &CLS_RAMP_DOT);
    // An explicit mean-pooling file is the default encoder, id included.
    let d = folder_with_pooling(r#"{"pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false}"#);
    let explicit = SentenceEncoder::load(d.path(), 128).unwrap();
    assert_eq!(explicit.id(), mean.id());
    assert_eq!(explicit.encode(&SENTENCES[..1], 1).unwrap(), mean.encode(&SENTENCES[..1], 1).unwrap());
}

#[test]
fn unsupported_pooling_is_refused_naming_file_and_field() {
    for (json, want) in [
        (r#"{"pooling_mode_mean_tokens": false, "pooling_mode_max_tokens": true}"#, "pooling_mode_max_tokens: unsupported"),
        (r#"{"pooling_mode_lasttoken": true, "pooling_mode_mean_tokens": true}"#, "pooling_mode_lasttoken: unsupported"),
        (r#"{"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": true}"#, "both true"),
        (r#"{"pooling_mode_mean_tokens": false}"#, "no pooling mode is true"),
        (r#"{"pooling_mode_mean_tokens": tru"#, "line 1 column 32"),
        (r#"[true]"#, "not a JSON object"),
    ] {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        std::fs::write(&p, json).unwrap();
        let e = Pooling::from_config(&p).err().unwrap().to_string();
        assert!(e.starts_with(&p.display().to_string()) && e.contains(want), "{json}: {e}");
    }
}

#[test]
fn missing_files_name_the_file() {
    let d = tempfile::tempdir().unwrap();
    let e = SentenceEncoder::load(d.path(), 128).err().unwrap().to_string();
    assert!(e.starts_with(&d.path().join("config.json").display().to_string()) && e.contains("missing"), "{e}");
}

#[test]
fn embedding_cache_persists_and_is_bound_to_its_encoder() {
    let enc = SentenceEncoder::load(&dir(), 128).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("items.emb");
    let direct = enc.encode(&SENTENCES, 8).unwrap();
    {
        let mut c = EmbeddingCache::open(&p, &enc).unwrap();
        let v = c.get_or_encode(&enc, &[SENTENCES[0], SENTENCES[1], SENTENCES[0]], 8).unwrap();
        assert_eq!(c.len(), 2);
        assert!(cosine(&v[0], &direct[0]) > 0.99999 && v[0] == v[2]);
        c.save().unwrap();
    }
    let mut c = EmbeddingCache::open(&p, &enc).unwrap();
    assert_eq!(c.len(), 2);
    let v = c.get_or_encode(&enc, &SENTENCES, 8).unwrap();
    assert_eq!(c.len(), 3);
    for (a, b) in v.iter().zip(&direct) {
        assert!(cosine(a, b) > 0.99999);
    }
    // A torn file and a foreign header are refused with the file's name.
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
    let e = EmbeddingCache::open(&p, &enc).err().unwrap().to_string();
    assert!(e.starts_with(&p.display().to_string()) && e.contains("truncated"), "{e}");
    let text = String::from_utf8_lossy(&bytes[..60]).replace(enc.id(), "0000000000000000");
    std::fs::write(&p, text.as_bytes()).unwrap();
    let e = EmbeddingCache::open(&p, &enc).err().unwrap().to_string();
    assert!(e.contains("made by encoder 0000000000000000"), "{e}");
}
