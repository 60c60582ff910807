//! Grouping accuracy as the log-parsing literature defines it (Zhu et al., "Tools and
//! Benchmarks for Automated Log Parsing", ICSE-SEIP 2019): a line is parsed correctly when the
//! set of lines in its predicted group is exactly the set of lines in its true group; the
//! accuracy is the share of lines parsed correctly.
use std::collections::HashMap;
use std::hash::Hash;

/// `truth[i]` and `predicted[i]` are the true and predicted group of line `i`.
pub fn grouping_accuracy<T: Hash + Eq, P: Hash + Eq>(truth: &[T], predicted: &[P]) -> f64 {
    assert_eq!(truth.len(), predicted.len(), "one prediction per line");
    if truth.is_empty() {
        return 1.0;
    }
    let mut true_size: HashMap<&T, usize> = HashMap::new();
    for t in truth {
        *true_size.entry(t).or_default() += 1;
    }
    // For each predicted group: its size, and the one true group of all its lines (or None
    // once two lines disagree).
    let mut groups: HashMap<&P, (usize, Option<&T>, bool)> = HashMap::new();
    for (t, p) in truth.iter().zip(predicted) {
        let g = groups.entry(p).or_insert((0, Some(t), true));
        g.0 += 1;
        if g.1 != Some(t) {
            g.2 = false;
        }
    }
    let correct: usize = groups
        .values()
        .filter(|(size, t, pure)| *pure && true_size[t.expect("set on insert")] == *size)
        .map(|(size, _, _)| size)
        .sum();
    correct as f64 / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::grouping_accuracy;

    #[test]
    fn a_line_counts_only_when_its_predicted_group_is_exactly_its_true_group() {
        // True groups {0,1,2} and {3,4}. Predicted: {0,1} split from {2}; {3,4} exact.
        assert_eq!(grouping_accuracy(&["a", "a", "a", "b", "b"], &[1, 1, 2, 3, 3]), 0.4);
        // Merging both true groups makes every line wrong.
        assert_eq!(grouping_accuracy(&["a", "a", "b"], &[0, 0, 0]), 0.0);
        // Labels need not match, only the partition.
        assert_eq!(grouping_accuracy(&["a", "a", "b"], &["x", "x", "y"]), 1.0);
    }
}
