use timbre_rng::SplitMix64;

use crate::logistic::{self, Fit, Problem};
use crate::*;

/// `per_label` tracks of each of `centres`, as Gaussian blobs of spread `sigma` in `dim`
/// dimensions (the first coordinates hold the centre, the rest is noise).
fn blobs(centres: &[&[f32]], per_label: usize, dim: usize, sigma: f32, seed: u64) -> Vec<(String, String, Vec<f32>)> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    for (label, centre) in centres.iter().enumerate() {
        for i in 0..per_label {
            let v = (0..dim).map(|d| centre.get(d).copied().unwrap_or(0.0) + sigma * rng.normal()).collect();
            out.push((format!("{label}/{seed}-{i}.flac"), format!("label{label}"), v));
        }
    }
    out
}

fn examples(data: &[(String, String, Vec<f32>)]) -> Vec<Example<'_>> {
    data.iter().map(|(t, l, e)| Example { track: t, label: l, embedding: e }).collect()
}

fn accuracy(head: &Head, data: &[(String, String, Vec<f32>)]) -> f64 {
    let right = data
        .iter()
        .filter(|(_, label, e)| {
            let p = head.predict(e).unwrap();
            let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
            &head.labels()[best] == label
        })
        .count();
    right as f64 / data.len() as f64
}

#[test]
fn separable_blobs_are_learned_and_probabilities_sum_to_one() {
    let centres: [&[f32]; 3] = [&[3.0, 0.0], &[0.0, 3.0], &[-3.0, -3.0]];
    let data = blobs(&centres, 40, 16, 1.0, 1);
    let (head, report) = train(&examples(&data), &TrainOptions::default()).unwrap();
    assert_eq!(head.labels(), ["label0", "label1", "label2"]);
    assert_eq!(report.holdout_tracks, [8, 8, 8], "20 % of each label's 40 tracks");
    assert!(report.candidates[report.chosen].accuracy >= 0.95, "{report:?}");
    let unseen = blobs(&centres, 50, 16, 1.0, 2);
    assert!(accuracy(&head, &unseen) >= 0.95, "{}", accuracy(&head, &unseen));
    for (_, _, e) in &unseen {
        let sum: f32 = head.predict(e).unwrap().iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
    }
}

#[test]
fn gradient_descent_reaches_the_penalised_optimum() {
    // At the optimum the gradient of loss + l2/2 |W|² vanishes; check it from outside the loop.
    let data = blobs(&[&[1.0, 0.0], &[0.0, 1.0], &[0.0, 0.0]], 30, 5, 1.0, 3);
    let x: Vec<f64> = data.iter().flat_map(|(_, _, e)| e.iter().map(|&v| f64::from(v))).collect();
    let y: Vec<usize> = data.iter().map(|(_, l, _)| l[5..].parse().unwrap()).collect();
    let problem = Problem { x: &x, y: &y, dim: 5, classes: 3 };
    let l2 = 0.01;
    let fit = logistic::fit(&problem, l2, problem.smoothness(), None, 5000);
    let mut gradient = Fit { weights: vec![0.0; 15], bias: vec![0.0; 3] };
    problem.loss_and_gradient(&fit, &mut gradient);
    let largest = gradient
        .weights
        .iter()
        .zip(&fit.weights)
        .map(|(g, w)| (g + l2 * w).abs())
        .chain(gradient.bias.iter().map(|g| g.abs()))
        .fold(0.0, f64::max);
    assert!(largest < 1e-4, "gradient {largest}");
    assert!(problem.loss(&fit) < (3f64).ln(), "better than the uniform guess");
}

#[test]
fn a_problem_no_line_separates_is_given_to_knn() {
    // XOR: four clusters, opposite corners share a label. No linear boundary does better than
    // about half; neighbours do.
    let corners: [&[f32]; 4] = [&[4.0, 4.0], &[-4.0, -4.0], &[4.0, -4.0], &[-4.0, 4.0]];
    let raw = blobs(&corners, 30, 4, 0.8, 4);
    let data: Vec<_> = raw
        .into_iter()
        .map(|(t, l, e)| {
            let label = if l == "label0" || l == "label1" { "same" } else { "opposite" };
            (t, label.to_owned(), e)
        })
        .collect();
    let (head, report) = train(&examples(&data), &TrainOptions::default()).unwrap();
    assert!(matches!(head.classifier(), Classifier::Knn { .. }), "{report:?}");
    let best_logistic =
        report.candidates.iter().filter(|c| c.kind == "logistic").map(|c| c.accuracy).fold(0.0, f64::max);
    assert!(report.candidates[report.chosen].accuracy > best_logistic + 0.2, "{report:?}");
    assert!(report.classifier.starts_with("kNN"), "{}", report.classifier);
}

#[test]
fn segments_of_one_track_stay_on_one_side() {
    // Three segments per track, labels by track: the named tracks are held out whole.
    let base = blobs(&[&[2.0], &[-2.0]], 10, 3, 1.0, 5);
    let data: Vec<_> = base
        .iter()
        .flat_map(|(t, l, e)| {
            (0..3).map(move |s| (t.clone(), l.clone(), e.iter().map(|v| v + s as f32 * 0.01).collect::<Vec<_>>()))
        })
        .collect();
    let held: Vec<String> = vec![base[0].0.clone(), base[10].0.clone(), base[11].0.clone()];
    let options = TrainOptions { holdout: Holdout::Tracks(held), ..TrainOptions::default() };
    let (_, report) = train(&examples(&data), &options).unwrap();
    assert_eq!(report.holdout_tracks, [1, 2]);
    assert_eq!(report.train_tracks, [9, 8]);
}

#[test]
fn training_is_deterministic_and_a_saved_head_predicts_the_same() {
    let data = blobs(&[&[1.0, 1.0], &[-1.0, 0.0]], 25, 8, 1.0, 6);
    let (head, _) = train(&examples(&data), &TrainOptions::default()).unwrap();
    let (again, _) = train(&examples(&data), &TrainOptions::default()).unwrap();
    assert_eq!(head.to_json(), again.to_json());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("head.json");
    head.save(&path).unwrap();
    let loaded = Head::load(&path).unwrap();
    for (_, _, e) in &data {
        assert_eq!(head.predict(e).unwrap(), loaded.predict(e).unwrap());
    }
    assert!(!dir.path().join("head.json.partial").exists());
}

#[test]
fn bad_training_data_is_refused_naming_the_track() {
    let data = blobs(&[&[1.0], &[-1.0]], 5, 2, 1.0, 7);
    let mut bad = examples(&data);
    let short = [0.0f32];
    bad[3].embedding = &short;
    let err = train(&bad, &TrainOptions::default()).unwrap_err();
    assert!(matches!(&err, TrainError::Dimension { index: 3, expected: 2, actual: 1, .. }), "{err}");
    assert!(err.to_string().contains(data[3].0.as_str()), "{err}");

    let mut bad = examples(&data);
    let nan = [f32::NAN, 0.0];
    bad[2].embedding = &nan;
    assert!(matches!(train(&bad, &TrainOptions::default()), Err(TrainError::NotFinite { index: 2, .. })));

    let mut bad = examples(&data);
    bad[1].track = bad[7].track;
    assert!(matches!(train(&bad, &TrainOptions::default()), Err(TrainError::ConflictingLabels { .. })));

    let one_label: Vec<_> = examples(&data).into_iter().filter(|e| e.label == "label0").collect();
    assert!(matches!(train(&one_label, &TrainOptions::default()), Err(TrainError::TooFewLabels(_))));
    assert!(matches!(train(&[], &TrainOptions::default()), Err(TrainError::Empty)));
    let none_named =
        TrainOptions { holdout: Holdout::Tracks(vec!["elsewhere.flac".into()]), ..TrainOptions::default() };
    assert!(matches!(train(&examples(&data), &none_named), Err(TrainError::NoHoldout)));
}

#[test]
fn a_head_file_that_does_not_add_up_is_refused() {
    let data = blobs(&[&[1.0], &[-1.0]], 10, 2, 1.0, 8);
    let (head, _) = train(&examples(&data), &TrainOptions { k: vec![], ..TrainOptions::default() }).unwrap();
    let json: serde_json::Value = serde_json::from_str(&head.to_json()).unwrap();
    let broken = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut j = json.clone();
        edit(&mut j);
        Head::from_json(&j.to_string()).unwrap_err()
    };
    assert!(broken(&|j| j["classifier"]["weights"].as_array_mut().unwrap().truncate(1)).contains("logistic weights"));
    assert!(broken(&|j| j["standardiser"]["scale"][0] = 0.0.into()).contains("scale"));
    assert!(broken(&|j| j["labels"] = serde_json::json!(["one"])).contains("at least two"));
    assert!(broken(&|j| j["version"] = 99.into()).contains("version 99"));
    assert!(broken(&|j| j["format"] = "other".into()).contains("format"));
    assert!(broken(&|j| j["extra"] = 1.into()).contains("unknown field"));
    let knn = serde_json::json!({"kind": "knn", "k": 1, "points": [1.0, 0.0], "point_labels": [2]});
    assert!(broken(&|j| j["classifier"] = knn.clone()).contains("not one of the 2 labels"));
    let err = head.predict(&[1.0]).unwrap_err();
    assert_eq!(err, PredictError::Dimension { expected: 2, actual: 1 });
}

#[test]
fn the_card_names_the_upstream_every_label_and_the_chosen_candidate() {
    let data = blobs(&[&[1.0, 0.0], &[-1.0, 0.0]], 20, 4, 1.0, 9);
    let (_, report) = train(&examples(&data), &TrainOptions::default()).unwrap();
    let provenance = card::Provenance {
        name: "genre",
        upstream: "musicnn-msd",
        data: "a folder",
        command: "timbred train head --embedding musicnn-msd --data DIR --out genre",
        seconds: 1.5,
    };
    let text = card::card(&provenance, &report);
    for needle in ["# genre", "`musicnn-msd` embedding", "| label0 | 16 | 4 |", "**(chosen)**", "timbred train head"] {
        assert!(text.contains(needle), "the card lacks {needle}:\n{text}");
    }
    assert_eq!(text.matches("**(chosen)**").count(), 1);
}
