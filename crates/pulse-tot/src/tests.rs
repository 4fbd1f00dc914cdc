use super::*;
use pulse_data::{Event, Item, LoadReport, User};
use pulse_slm::scripted::Scripted;

fn dataset() -> Dataset {
    let titles = ["Rose Lip Balm", "Argan Oil Shampoo", "Vitamin C Serum", "Night Cream", "Clay Mask", "Hair Oil"];
    let items = titles
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut it = Item::new(format!("i{i}"));
            it.title = t.to_string();
            it.title_missing = false;
            it
        })
        .collect();
    let ev = |item: u32, order: i64| Event { item, order, rating: None, review: None };
    let users = vec![
        User { id: "u0".into(), events: vec![ev(0, 1), ev(1, 2), ev(2, 3), ev(3, 4), ev(4, 5)] },
        User { id: "u1".into(), events: vec![ev(3, 1), ev(4, 2), ev(5, 3), ev(1, 4), ev(0, 5)] },
        User { id: "u2".into(), events: vec![ev(5, 1), ev(2, 2), ev(0, 3), ev(4, 4), ev(3, 5)] },
    ];
    Dataset { name: "toy".into(), items, users, report: LoadReport::default() }
}

fn text_of(p: &Prompt) -> String {
    match p {
        Prompt::Chat(m) => m.iter().map(|m| format!("[{}] {}", m.role, m.content)).collect::<Vec<_>>().join("\n"),
        Prompt::Raw(s) => s.clone(),
    }
}

/// Scores a chain by how many of its thoughts say "good" (and ties by nothing else).
struct Keyword;
impl ChainScorer for Keyword {
    fn id(&self) -> String {
        "keyword".into()
    }
    fn score(&mut self, _g: &mut dyn Generator, job: &ScoreJob<'_>) -> Result<Vec<f64>> {
        assert!(job.behaviour.starts_with("[CONTEXT] History: "), "{}", job.behaviour);
        Ok(job.chains.iter().map(|c| c.iter().filter(|t| t.contains("good")).count() as f64).collect())
    }
}

/// Sample 1 of every node says "good", the others "meh"; sample 0 also carries a second line that must
/// not leak into the thought.
fn scripted() -> Scripted {
    Scripted::new(|r, j| {
        let depth = match &r.prompt {
            Prompt::Chat(m) => m.last().unwrap().content.lines().count(),
            Prompt::Raw(_) => 0,
        };
        match j {
            1 => format!("good thought at depth {depth}"),
            0 => format!("meh thought {depth}\n9. leaked line"),
            _ => format!("meh {j}"),
        }
    })
}

#[test]
fn beam_search_keeps_the_best_chains_and_stores_them() {
    let ds = dataset();
    let split = Split::leave_one_out(&ds);
    let store = Store::in_memory().unwrap();
    let mut g = scripted();
    let neighbours: HashMap<u32, Neighbours> = [(0u32, vec![vec![5u32, 4], vec![3]])].into();
    let cfg = TotConfig::default();
    let s = run(&mut g, &mut Keyword, &ds, &split, &neighbours, &cfg, Scoring::Space, &RunOptions { seed: 3, users: None }, &store, &mut |_| {}).unwrap();
    assert_eq!((s.requested, s.refined, s.already_stored), (3, 3, 0));
    // Per user: 1 root request, then `beam` requests at each deeper level; `branching` samples each.
    assert_eq!(g.seen.len(), 3 * (1 + 2 + 2));
    assert_eq!(s.thoughts, 3 * 5 * 3);
    assert!(g.seen.iter().all(|r| r.n == 3 && r.params.temperature == 1.0 && r.params.top_k == 51 && r.params.max_tokens == 61));
    // Prompts: history, similar users' items, chosen item; the assistant turn continues the chain.
    let p0 = text_of(&g.seen[0].prompt);
    assert!(p0.contains("1. Rose Lip Balm\n2. Argan Oil Shampoo\n"), "{p0}");
    assert!(p0.contains("Shoppers with similar tastes bought:\n- Hair Oil; Clay Mask\n- Night Cream\n"), "{p0}");
    assert!(p0.contains("The item they chose next: Vitamin C Serum"), "{p0}");
    assert!(p0.ends_with("[assistant] 1. "), "{p0}");
    let deeper: Vec<String> = g.seen.iter().map(|r| text_of(&r.prompt)).filter(|t| t.ends_with("3. ")).collect();
    assert!(deeper.iter().any(|t| t.contains("1. good thought at depth 1\n2. good thought at depth 2\n3. ")), "{deeper:?}");
    // Seeds differ per node.
    let seeds: std::collections::HashSet<u64> = g.seen.iter().map(|r| r.seed).collect();
    assert_eq!(seeds.len(), g.seen.len());
    let recs = store.records(Some("tot-space")).unwrap();
    assert_eq!(recs.len(), 3);
    for r in &recs {
        assert_eq!(r.rationale.as_deref(), Some("good thought at depth 1 good thought at depth 2 good thought at depth 3"));
        assert_eq!(r.score, Some(3.0));
        assert_eq!(r.key.prompt_version, TOT_PROMPT_VERSION);
        assert!(r.key.params.contains("\"depth\":3") && r.key.params.contains("\"beam\":2") && r.key.params.contains("keyword"), "{}", r.key.params);
        let raw: serde_json::Value = serde_json::from_str(&r.raw).unwrap();
        assert_eq!(raw["nodes"].as_array().unwrap().len(), 15);
        assert!(!r.raw.contains("leaked"), "only the first line is a thought");
    }
}

#[test]
fn rerun_skips_stored_users_and_empty_thoughts_lose() {
    let ds = dataset();
    let split = Split::leave_one_out(&ds);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let cfg = TotConfig { depth: 2, branching: 2, beam: 1, group: 1, ..TotConfig::default() };
    {
        let store = Store::open(&path).unwrap();
        let mut g = Scripted::new(|_, j| if j == 0 { "".into() } else { "second".into() });
        let s = run(&mut g, &mut LikelihoodScorer, &ds, &split, &HashMap::new(), &cfg, Scoring::Likelihood, &RunOptions { seed: 1, users: Some(1) }, &store, &mut |_| {}).unwrap();
        assert_eq!(s.refined, 1);
        let r = &store.records(Some("tot-likelihood")).unwrap()[0];
        // The empty sample scores -inf; the non-empty one wins even though it comes second.
        assert_eq!(r.rationale.as_deref(), Some("second second"));
        assert!(!text_of(&g.seen[0].prompt).contains("similar tastes"));
    }
    let store = Store::open(&path).unwrap();
    let mut g = Scripted::new(|_, _| "x".into());
    let s = run(&mut g, &mut LikelihoodScorer, &ds, &split, &HashMap::new(), &cfg, Scoring::Likelihood, &RunOptions { seed: 1, users: None }, &store, &mut |_| {}).unwrap();
    assert_eq!((s.already_stored, s.refined), (1, 2));
    assert_eq!(store.count().unwrap(), 3);
    // Another scorer (or settings) is another key: nothing skipped.
    let s = run(&mut g, &mut Keyword, &ds, &split, &HashMap::new(), &cfg, Scoring::Space, &RunOptions { seed: 1, users: None }, &store, &mut |_| {}).unwrap();
    assert_eq!((s.already_stored, s.refined), (0, 3));
}

#[test]
fn groups_are_fixed_slices_of_the_user_order_each_from_a_clean_engine() {
    let ds = dataset();
    let split = Split::leave_one_out(&ds);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.sqlite")).unwrap();
    let cfg = TotConfig { depth: 2, branching: 2, beam: 1, group: 2, ..TotConfig::default() };
    let opts = |users| RunOptions { seed: 1, users };
    let mut g = Scripted::new(|_, j| format!("thought {j}"));
    run(&mut g, &mut Keyword, &ds, &split, &HashMap::new(), &cfg, Scoring::Space, &opts(Some(1)), &store, &mut |_| {}).unwrap();
    // one group of one user: a reset, then one call per depth
    assert_eq!(g.calls, vec![None, Some(1), Some(1)]);
    let mut g = Scripted::new(|_, j| format!("thought {j}"));
    let s = run(&mut g, &mut Keyword, &ds, &split, &HashMap::new(), &cfg, Scoring::Space, &opts(None), &store, &mut |_| {}).unwrap();
    assert_eq!((s.already_stored, s.refined), (1, 2));
    // The resumed run keeps the groups of the user order, {0, 1} and {2}: the second user is searched
    // without the third (an uninterrupted run would have searched it with the first), and each group
    // starts with a reset.
    assert_eq!(g.calls, vec![None, Some(1), Some(1), None, Some(1), Some(1)]);
    // Nothing left: no group, no reset, no call.
    let mut g = Scripted::new(|_, j| format!("thought {j}"));
    run(&mut g, &mut Keyword, &ds, &split, &HashMap::new(), &cfg, Scoring::Space, &opts(None), &store, &mut |_| {}).unwrap();
    assert!(g.calls.is_empty());
}

#[test]
fn bad_settings_are_refused() {
    let ds = dataset();
    let split = Split::leave_one_out(&ds);
    let store = Store::in_memory().unwrap();
    let mut g = scripted();
    let cfg = TotConfig { beam: 0, ..TotConfig::default() };
    let e = run(&mut g, &mut Keyword, &ds, &split, &HashMap::new(), &cfg, Scoring::Space, &RunOptions { seed: 1, users: None }, &store, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("beam"), "{e}");
    assert!(g.seen.is_empty());
}

#[test]
fn neighbours_are_nearest_by_cosine_with_recent_items() {
    let ds = dataset();
    let split = Split::leave_one_out(&ds);
    let (choices, _) = training_choices(&split);
    let reps = vec![vec![1.0, 0.0], vec![0.9, 0.1], vec![0.0, 1.0]];
    let nb = neighbours_from_reps(&split, &choices, &reps, 1, 2, 1);
    // u0's nearest is u1, whose training items are 3, 4, 5 → the last two.
    assert_eq!(nb[&0], vec![vec![4, 5]]);
    assert_eq!(nb[&2], vec![vec![4, 5]]);
}

#[test]
fn thoughts_lose_repeated_step_numbers_only() {
    assert_eq!(clean_thought("1. 2. Crabtree & Evelyn\n3. more"), "Crabtree & Evelyn");
    assert_eq!(clean_thought("  2) The choice involves"), "The choice involves");
    assert_eq!(clean_thought("1.2 feet wide"), "1.2 feet wide");
    assert_eq!(clean_thought("250g/8.8 OZ"), "250g/8.8 OZ");
    assert_eq!(clean_thought("3."), "");
    assert_eq!(clean_thought("\nlater"), "");
}

/// A judge that, like the Thought Space, rewards restating the chosen item: the share of its title's words
/// in the chain, plus 0.1 per thought saying "good".
struct Echo;
impl ChainScorer for Echo {
    fn id(&self) -> String {
        "echo".into()
    }
    fn score(&mut self, _g: &mut dyn Generator, job: &ScoreJob<'_>) -> Result<Vec<f64>> {
        let chosen = job.behaviour.split("[CHOSEN_ITEM] ").nth(1).unwrap();
        Ok(job
            .chains
            .iter()
            .map(|c| title_recall(&chain_text(c), chosen) + 0.1 * c.iter().filter(|t| t.contains("good")).count() as f64)
            .collect())
    }
}

#[test]
fn title_penalty_steers_the_search_away_from_naming_the_item() {
    let ds = dataset();
    let split = Split::leave_one_out(&ds);
    // Sample 0 restates the chosen title, sample 1 says something about the shopper.
    let gen = || {
        Scripted::new(|r, j| {
            let p = text_of(&r.prompt);
            let chosen = p.split("The item they chose next: ").nth(1).unwrap().lines().next().unwrap().to_string();
            if j == 0 { format!("{chosen} is it") } else { "a good fit for dry skin".into() }
        })
    };
    let opts = RunOptions { seed: 1, users: Some(1) };
    let plain = TotConfig::default();
    let store = Store::in_memory().unwrap();
    run(&mut gen(), &mut Echo, &ds, &split, &HashMap::new(), &plain, Scoring::Space, &opts, &store, &mut |_| {}).unwrap();
    let r = &store.records(Some("tot-space")).unwrap()[0];
    // u0 chose "Vitamin C Serum": without the penalty the chain naming it wins (1.0 + 0.1 for its one good thought).
    assert_eq!(r.rationale.as_deref(), Some("Vitamin C Serum is it a good fit for dry skin a good fit for dry skin"));
    assert!((r.score.unwrap() - 1.2).abs() < 1e-9, "{:?}", r.score);
    assert!(!r.key.params.contains("title_penalty"), "the default leaves the key as it was: {}", r.key.params);

    let pen = TotConfig { title_penalty: 1.0, ..TotConfig::default() };
    let store = Store::in_memory().unwrap();
    run(&mut gen(), &mut Echo, &ds, &split, &HashMap::new(), &pen, Scoring::Space, &opts, &store, &mut |_| {}).unwrap();
    let r = &store.records(Some("tot-space")).unwrap()[0];
    assert_eq!(r.rationale.as_deref(), Some("a good fit for dry skin a good fit for dry skin a good fit for dry skin"));
    // the stored score is the penalised one (nothing to subtract here)
    assert!((r.score.unwrap() - 0.3).abs() < 1e-9, "{:?}", r.score);
    assert!(r.key.params.contains("\"title_penalty\":1.0"), "{}", r.key.params);
    // the tree records the penalised score of a chain that names the item: 1.0 + 0.0 - 1.0
    let raw: serde_json::Value = serde_json::from_str(&r.raw).unwrap();
    let first: Vec<f64> = raw["nodes"].as_array().unwrap().iter().filter(|n| n["depth"] == 1).map(|n| n["score"].as_f64().unwrap()).collect();
    assert!((first[0] - 0.0).abs() < 1e-9 && (first[1] - 0.1).abs() < 1e-9, "{first:?}");

    for bad in [-0.5, f64::NAN, f64::INFINITY] {
        let cfg = TotConfig { title_penalty: bad, ..TotConfig::default() };
        let e = run(&mut gen(), &mut Echo, &ds, &split, &HashMap::new(), &cfg, Scoring::Space, &opts, &store, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("title_penalty"), "{e}");
    }
}

#[test]
fn contrast_is_the_cosine_minus_the_mean_negative_cosine() {
    let (r, b) = ([1.0f32, 0.0], [1.0f32, 1.0]);
    let (n1, n2) = ([0.0f32, 1.0], [-1.0f32, 0.0]);
    let cos_rb = 1.0 / 2f64.sqrt();
    assert!((contrast(&r, &b, &[]) - cos_rb).abs() < 1e-6);
    // cos(r, n1) = 0, cos(r, n2) = -1
    assert!((contrast(&r, &b, &[&n1, &n2]) - (cos_rb + 0.5)).abs() < 1e-6);
}

#[test]
fn negatives_keep_the_history_and_swap_in_items_the_user_never_touched() {
    let ds = dataset();
    let split = Split::leave_one_out(&ds);
    let (choices, _) = training_choices(&split);
    // u0 touched items 0..=4: the only item left is "Hair Oil", however many are asked for.
    let c = &choices[0];
    assert_eq!(ds.users[c.user as usize].id, "u0");
    let negs = negative_behaviours(&ds, c, 3, 7);
    assert_eq!(negs, vec!["[CONTEXT] History: Rose Lip Balm; Argan Oil Shampoo [CHOSEN_ITEM] Hair Oil".to_string()]);
    assert!(negative_behaviours(&ds, c, 0, 7).is_empty());

    // A wider catalogue: k distinct negatives, none of the user's items, the same for the same seed.
    let mut wide = dataset();
    for i in 6..40 {
        let mut it = Item::new(format!("i{i}"));
        it.title = format!("Extra Item {i}");
        it.title_missing = false;
        wide.items.push(it);
    }
    let split = Split::leave_one_out(&wide);
    let (choices, _) = training_choices(&split);
    let c = &choices[0];
    let a = negative_behaviours(&wide, c, 8, 7);
    assert_eq!(a.len(), 8);
    assert_eq!(a, negative_behaviours(&wide, c, 8, 7));
    assert_ne!(a, negative_behaviours(&wide, c, 8, 8));
    let chosen: std::collections::HashSet<&str> = a.iter().map(|t| t.split("[CHOSEN_ITEM] ").nth(1).unwrap()).collect();
    assert_eq!(chosen.len(), 8);
    assert!(chosen.iter().all(|t| t.starts_with("Extra Item ")), "{chosen:?}");
    assert!(a.iter().all(|t| t.starts_with("[CONTEXT] History: Rose Lip Balm; Argan Oil Shampoo [CHOSEN_ITEM] ")), "{a:?}");
}

/// Sees the negatives the search hands the judge, and scores chains by the "good" count.
struct Negatives(Vec<usize>);
impl ChainScorer for Negatives {
    fn id(&self) -> String {
        "negatives".into()
    }
    fn score(&mut self, _g: &mut dyn Generator, job: &ScoreJob<'_>) -> Result<Vec<f64>> {
        let history = job.behaviour.split(" [CHOSEN_ITEM] ").next().unwrap();
        assert!(job.negatives.iter().all(|n| n.starts_with(history) && *n != job.behaviour), "{:?}", job.negatives);
        self.0.push(job.negatives.len());
        Ok(job.chains.iter().map(|c| c.iter().filter(|t| t.contains("good")).count() as f64).collect())
    }
}

#[test]
fn contrast_negatives_reach_the_judge_and_the_key() {
    let ds = dataset();
    let split = Split::leave_one_out(&ds);
    let opts = RunOptions { seed: 1, users: Some(1) };
    let store = Store::in_memory().unwrap();
    let mut judge = Negatives(Vec::new());
    run(&mut scripted(), &mut judge, &ds, &split, &HashMap::new(), &TotConfig::default(), Scoring::Space, &opts, &store, &mut |_| {}).unwrap();
    assert!(judge.0.iter().all(|&n| n == 0), "{:?}", judge.0);
    let r = &store.records(Some("tot-space")).unwrap()[0];
    assert!(!r.key.params.contains("contrast_negatives"), "the default leaves the key as it was: {}", r.key.params);

    let cfg = TotConfig { contrast_negatives: 2, ..TotConfig::default() };
    let store = Store::in_memory().unwrap();
    let mut judge = Negatives(Vec::new());
    run(&mut scripted(), &mut judge, &ds, &split, &HashMap::new(), &cfg, Scoring::Space, &opts, &store, &mut |_| {}).unwrap();
    // u0 has one untouched item left, so one negative at each of the three depths
    assert_eq!(judge.0, vec![1, 1, 1]);
    let r = &store.records(Some("tot-space")).unwrap()[0];
    assert!(r.key.params.contains("\"contrast_negatives\":2"), "{}", r.key.params);

    let e = run(&mut scripted(), &mut LikelihoodScorer, &ds, &split, &HashMap::new(), &cfg, Scoring::Likelihood, &opts, &store, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("contrast_negatives"), "{e}");
}

fn demo() -> Demonstration {
    Demonstration {
        history: vec!["Unscented Body Lotion".into(), "Fragrance-Free <eos> Cleanser".into()],
        similar: vec![],
        chosen: "Sensitive Skin Moisturiser".into(),
        steps: vec!["She avoids fragrance.".into(), "Her skin is sensitive.".into()],
    }
}

#[test]
fn demonstrations_turn_the_prompt_into_a_completion_and_reach_the_key() {
    let ds = dataset();
    let split = Split::leave_one_out(&ds);
    let store = Store::in_memory().unwrap();
    let mut g = scripted();
    let neighbours: HashMap<u32, Neighbours> = [(0u32, vec![vec![5u32, 4], vec![3]])].into();
    let cfg = TotConfig { depth: 2, demonstrations: vec![demo()], ..TotConfig::default() };
    run(&mut g, &mut Keyword, &ds, &split, &neighbours, &cfg, Scoring::Space, &RunOptions { seed: 3, users: Some(1) }, &store, &mut |_| {}).unwrap();
    let Prompt::Raw(p0) = &g.seen[0].prompt else { panic!("a completion prompt is raw text: {:?}", g.seen[0].prompt) };
    // The heading, the worked example in the user's form (no control-token spelling), then the user's entry.
    let want = "Shopper's recent items: Unscented Body Lotion; Fragrance-Free eos Cleanser\n\
                Chosen next: Sensitive Skin Moisturiser\nWhy, step by step:\n1. She avoids fragrance.\n2. Her skin is sensitive.\n\n\
                Shopper's recent items: Rose Lip Balm; Argan Oil Shampoo\n\
                Shoppers with similar tastes bought: Hair Oil; Clay Mask; Night Cream\n\
                Chosen next: Vitamin C Serum\nWhy, step by step:\n1. ";
    assert!(p0.starts_with("Why shoppers chose"), "{p0}");
    assert!(p0.ends_with(want), "{p0}");
    // The next depth continues the kept thought ("meh thought 0" from the raw sample, cleaned to one line).
    let p1 = text_of(&g.seen.last().unwrap().prompt);
    assert!(p1.contains("Why, step by step:\n1. ") && p1.ends_with("\n2. "), "{p1}");
    // The demonstrations are part of the settings, so rows written without them never match.
    let r = &store.records(Some("tot-space")).unwrap()[0];
    assert!(r.key.params.contains("\"demonstrations\":[{\"chosen\":\"Sensitive Skin Moisturiser\",\"history\":[\"Unscented Body Lotion\""), "{}", r.key.params);
    assert!(!config_params(&TotConfig::default(), "k").contains("demonstrations"));
    // A demonstration without steps, or with a two-line step, is refused.
    for bad in [Demonstration { steps: vec![], ..demo() }, Demonstration { steps: vec!["a\nb".into()], ..demo() }] {
        let cfg = TotConfig { demonstrations: vec![bad], ..TotConfig::default() };
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("demonstrations[0]"), "{e}");
    }
}

/// Records what the likelihood judge asks the engine to score.
struct ScoreLog(Scripted, Vec<String>);
impl Generator for ScoreLog {
    fn model(&self) -> &pulse_slm::ModelId {
        self.0.model()
    }
    fn count_tokens(&self, p: &Prompt) -> pulse_slm::Result<usize> {
        self.0.count_tokens(p)
    }
    fn generate(&mut self, r: &[GenRequest], sink: &mut dyn FnMut(pulse_slm::GenEvent<'_>)) -> pulse_slm::Result<()> {
        self.0.generate(r, sink)
    }
    fn reset(&mut self) {
        self.0.reset()
    }
    fn score(&mut self, p: &Prompt, conts: &[String]) -> pulse_slm::Result<Vec<pulse_slm::LogLik>> {
        self.1.extend(conts.iter().cloned());
        self.0.score(p, conts)
    }
}

#[test]
fn without_the_space_after_the_number_the_model_writes_it_and_the_judge_scores_it() {
    let ds = dataset();
    let split = Split::leave_one_out(&ds);
    let neighbours = HashMap::new();
    for (space, demos) in [(true, vec![]), (false, vec![]), (false, vec![demo()])] {
        let store = Store::in_memory().unwrap();
        let cfg = TotConfig { depth: 2, branching: 1, beam: 1, space_after_number: space, demonstrations: demos, ..TotConfig::default() };
        let mut g = ScoreLog(Scripted::new(|_, _| " Likes roses".into()), Vec::new());
        run(&mut g, &mut LikelihoodScorer, &ds, &split, &neighbours, &cfg, Scoring::Likelihood, &RunOptions { seed: 1, users: Some(1) }, &store, &mut |_| {})
            .unwrap();
        let texts: Vec<String> = g.0.seen.iter().map(|r| text_of(&r.prompt)).collect();
        let want = if space { [" 1. ", "\n2. "] } else { [" 1.", "\n2."] };
        assert_eq!(texts.len(), 2);
        for (t, w) in texts.iter().zip(want) {
            let t = t.replace("Why, step by step:\n", "Why: ");
            assert!(t.ends_with(w), "space_after_number = {space}: {t:?} should end with {w:?}");
        }
        // The judge scores the thoughts as the prompt continues them: the first after "1." needs its space.
        let first = if space { "Likes roses" } else { " Likes roses" };
        assert_eq!(g.1.last().unwrap(), &format!("{first}\n2. Likes roses"), "space_after_number = {space}");
        let key = &store.records(Some("tot-likelihood")).unwrap()[0].key.params;
        assert_eq!(key.contains("\"space_after_number\":false"), !space, "{key}");
    }
}
