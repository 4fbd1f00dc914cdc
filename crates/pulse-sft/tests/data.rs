//! SFT texts on the bundled Luxury Beauty data: the method's prompt shape, candidates that never leak the
//! user's other items, identical users/candidates across variants, and token boundaries.
use pulse_data::{LoadOptions, Split};
use pulse_sft::data::{build, candidates, mask_title, select_users, thinking_prefix, SftPrompt};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

fn lb() -> (pulse_data::Dataset, Split) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/amazon2018-luxury-beauty");
    let ds = pulse_data::load(&dir, &LoadOptions::default()).unwrap();
    let split = Split::leave_one_out(&ds);
    (ds, split)
}

#[test]
fn candidates_hold_the_target_and_nothing_the_user_touched() {
    let (_, split) = lb();
    for idx in [0, 7, 100, 2000] {
        let su = &split.users[idx];
        let target = *su.train.last().unwrap();
        let c = candidates(&split, idx, target, 10, 42, "sft-candidates").unwrap();
        assert_eq!(c.len(), 10);
        assert_eq!(c.iter().collect::<HashSet<_>>().len(), 10, "distinct");
        assert_eq!(c.iter().filter(|&&i| i == target).count(), 1);
        let touched: HashSet<u32> = su.train.iter().copied().chain([su.valid, su.test]).collect();
        assert!(c.iter().all(|i| *i == target || !touched.contains(i)));
        // seeded per user: same again, different with another seed
        assert_eq!(c, candidates(&split, idx, target, 10, 42, "sft-candidates").unwrap());
        assert_ne!(c, candidates(&split, idx, target, 10, 43, "sft-candidates").unwrap());
    }
}

#[test]
fn variants_share_users_and_candidates_and_differ_only_in_the_prefix() {
    let (ds, split) = lb();
    // pretend rationales exist for every third eligible user
    let rats: BTreeMap<usize, String> =
        (0..split.users.len()).filter(|i| i % 3 == 0 && split.users[*i].train.len() >= 2).map(|i| (i, format!("user {i} likes rose scents."))).collect();
    let users = select_users(&split, &[&rats], 40, 7);
    assert_eq!(users.len(), 40);
    assert!(users.windows(2).all(|w| w[0] < w[1]) && users.iter().all(|u| rats.contains_key(u)));
    let o = SftPrompt::default();
    let plain = build(&ds, &split, &users, None, &o, 42).unwrap();
    let reasons = build(&ds, &split, &users, Some(&rats), &o, 42).unwrap();
    for (p, r) in plain.iter().zip(&reasons) {
        assert_eq!((&p.user, &p.target, &p.user_turn, &p.answer), (&r.user, &r.target, &r.user_turn, &r.answer));
        assert_eq!(p.prefix, "The recommendation is ");
        assert!(r.prefix.starts_with("Let me think: user ") && r.prefix.ends_with("likes rose scents. The recommendation is "), "{}", r.prefix);
        let lines: Vec<&str> = p.user_turn.lines().collect();
        assert!(lines[0].starts_with("interacted items: ") && lines[1].starts_with("candidate items: "));
        assert_eq!(lines[1].matches("; ").count(), 9, "10 candidates");
        assert!(lines[0].matches("; ").count() <= 4, "at most 5 history titles");
        assert!(lines[1].contains(&p.answer), "the answer is among the candidates");
    }
    // a user without a rationale is an error, not a silent plain example
    let missing = (0..split.users.len()).find(|i| !rats.contains_key(i) && split.users[*i].train.len() >= 2).unwrap();
    let e = build(&ds, &split, &[missing], Some(&rats), &o, 42).err().unwrap().to_string();
    assert!(e.contains("no rationale for user"), "{e}");
}

#[test]
fn thinking_prefix_clips_and_ends_cleanly() {
    assert_eq!(thinking_prefix(None, 5), "The recommendation is ");
    assert_eq!(thinking_prefix(Some("   "), 5), "The recommendation is ");
    assert_eq!(thinking_prefix(Some("She loves roses."), 5), "Let me think: She loves roses. The recommendation is ");
    assert_eq!(thinking_prefix(Some("a b c d e f g"), 3), "Let me think: a b c …. The recommendation is ");
}

#[test]
fn mask_title_hides_the_chosen_item_and_keeps_the_reasoning() {
    let title = "Olay Regenerist Micro-Sculpting Cream, 1.7 oz";
    assert_eq!(
        mask_title("She buys anti-aging creams, so the Olay Regenerist Micro-Sculpting Cream fits her routine.", title),
        "She buys anti-aging creams, so this item fits her routine."
    );
    // a mention ending a sentence keeps its full stop; words only partly from the title stay
    assert_eq!(mask_title("Her pick is Olay. She likes Olay-style lotions", title), "Her pick is this item. She likes Olay-style lotions");
    // short words and stop words are never masked on their own
    assert_eq!(mask_title("It is for the oz of it", title), "It is for the oz of it");
    assert_eq!(mask_title("", title), "");
    assert_eq!(mask_title("Nothing in common here", "Rose Lip Balm"), "Nothing in common here");
}

#[test]
fn masking_changes_only_the_rationale_and_is_off_by_default() {
    let (ds, split) = lb();
    let users: Vec<usize> = (0..split.users.len()).filter(|&i| split.users[i].train.len() >= 2).take(20).collect();
    let rats: std::collections::BTreeMap<usize, String> = users
        .iter()
        .map(|&i| {
            let t = split.users[i].train[split.users[i].train.len() - 1];
            (i, format!("The user wants {} for daily care", ds.items[t as usize].title))
        })
        .collect();
    let o = SftPrompt::default();
    assert!(!o.mask_target);
    assert_eq!(serde_json::to_value(&o).unwrap().get("mask_target"), None, "off: not serialised (adapter fingerprints unchanged)");
    let plain = build(&ds, &split, &users, Some(&rats), &o, 7).unwrap();
    let masked = build(&ds, &split, &users, Some(&rats), &SftPrompt { mask_target: true, ..o.clone() }, 7).unwrap();
    let mut changed = 0;
    for (a, b) in plain.iter().zip(&masked) {
        assert_eq!((&a.user_turn, &a.answer, &a.target), (&b.user_turn, &b.answer, &b.target));
        if a.prefix != b.prefix {
            changed += 1;
            assert!(b.prefix.contains("this item") && b.prefix.ends_with("The recommendation is "), "{}", b.prefix);
        }
    }
    assert!(changed >= 15, "{changed} of 20 prefixes masked");
}

#[test]
fn reason_loss_moves_the_rationale_into_the_learned_part_and_is_off_by_default() {
    let (ds, split) = lb();
    let users: Vec<usize> = (0..split.users.len()).filter(|&i| split.users[i].train.len() >= 2).take(5).collect();
    let rats: std::collections::BTreeMap<usize, String> = users.iter().map(|&i| (i, format!("Reason number {i}."))).collect();
    let o = SftPrompt::default();
    assert_eq!(serde_json::to_value(&o).unwrap().get("reason_loss"), None, "off: not serialised (adapter fingerprints unchanged)");
    let answer_only = build(&ds, &split, &users, Some(&rats), &o, 7).unwrap();
    let learned = build(&ds, &split, &users, Some(&rats), &SftPrompt { reason_loss: true, ..o.clone() }, 7).unwrap();
    for ((a, b), &i) in answer_only.iter().zip(&learned).zip(&users) {
        assert!(a.reason.is_empty());
        assert_eq!((&a.user_turn, &a.answer), (&b.user_turn, &b.answer));
        assert_eq!(b.prefix, "Let me think:");
        assert_eq!(b.reason, format!(" Reason number {i}. The recommendation is "));
        assert_eq!(format!("{}{}", b.prefix, b.reason), a.prefix, "the same text, split where the loss starts");
        assert!(!serde_json::to_string(a).unwrap().contains("\"reason\""), "no reason field when empty");
    }
    // plain SFT has no rationale to learn: unchanged
    let plain = build(&ds, &split, &users, None, &SftPrompt { reason_loss: true, ..o }, 7).unwrap();
    assert!(plain.iter().all(|p| p.prefix == "The recommendation is " && p.reason.is_empty()));
}

#[test]
fn derange_gives_every_user_another_users_rationale_once() {
    use pulse_sft::data::derange;
    let (ds, split) = lb();
    let rats: BTreeMap<usize, String> =
        (0..split.users.len()).filter(|i| split.users[*i].train.len() >= 2).take(200).map(|i| (i, format!("reason of user {i}."))).collect();
    let users = select_users(&split, &[&rats], 50, 7);
    let d = derange(&rats, &users, 42).unwrap();
    assert_eq!(d.keys().copied().collect::<Vec<_>>(), users, "one rationale per user, no other user");
    for (u, r) in &d {
        assert_ne!(r, &rats[u], "user {u} kept their own rationale");
    }
    // each rationale is used exactly once
    let used: HashSet<&String> = d.values().collect();
    assert_eq!(used.len(), users.len());
    assert!(users.iter().all(|u| used.contains(&rats[u])));
    // seeded: the same again, another pairing with another seed
    assert_eq!(d, derange(&rats, &users, 42).unwrap());
    assert_ne!(d, derange(&rats, &users, 43).unwrap());
    // the texts differ from SFT with reasons only in the prefix, and carry the donor's rationale
    let o = SftPrompt::default();
    let own = build(&ds, &split, &users, Some(&rats), &o, 42).unwrap();
    let shuffled = build(&ds, &split, &users, Some(&d), &o, 42).unwrap();
    for ((a, b), u) in own.iter().zip(&shuffled).zip(&users) {
        assert_eq!((&a.user_turn, &a.answer), (&b.user_turn, &b.answer));
        assert_ne!(a.prefix, b.prefix);
        assert!(b.prefix.contains(d[u].trim_end_matches('.')), "{}", b.prefix);
    }
    // one user cannot be deranged; a user without a rationale is an error
    assert!(derange(&rats, &users[..1], 42).unwrap_err().to_string().contains("at least 2 users"));
    let missing = (0..split.users.len()).find(|i| !rats.contains_key(i)).unwrap();
    assert!(derange(&rats, &[users[0], missing], 42).unwrap_err().to_string().contains("no rationale for split user"));
}
