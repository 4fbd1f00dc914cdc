//! all-MiniLM-L6-v2 in candle against reference embeddings from Hugging Face transformers (an independent
//! BERT and tokenizer) on the same files, produced by
//!   bench/recbole/.venv/bin/python bench/encoder/reference_embeddings.py models/all-MiniLM-L6-v2
//! (torch 2.5.1, transformers 4.46.3): mean pooling over the mask, L2-normalised.

use std::path::PathBuf;

use pulse_thought::{cosine, EmbeddingCache, SentenceEncoder, DEFAULT_ENCODER};

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

#[test]
fn minilm_matches_transformers_reference() {
    let enc = SentenceEncoder::load(&dir(), 128).unwrap();
    assert_eq!(enc.dim(), 384);
    // Batched together (padding to the longest) and one at a time must agree.
    let together = enc.encode(&SENTENCES, 8).unwrap();
    for (i, e) in together.iter().enumerate() {
        let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        for (k, (&got, &want)) in e.iter().zip(&FIRST8[i]).enumerate() {
            assert!((got - want).abs() < 2e-5, "sentence {i} dim {k}: {got} vs reference {want}");
        }
        let ramp: f32 = e.iter().enumerate().map(|(k, x)| x * k as f32 / 384.0).sum();
        assert!((ramp - RAMP_DOT[i]).abs() < 1e-4, "sentence {i}: ramp dot {ramp} vs {}", RAMP_DOT[i]);
        let alone = enc.encode(&SENTENCES[i..i + 1], 1).unwrap();
        assert!(cosine(&alone[0], e) > 0.99999);
    }
    // Related texts are closer than unrelated ones.
    let v = enc.encode(&["moisturising hand cream", "hand lotion for dry skin", "graphics card for gaming"], 4).unwrap();
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.2);
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
