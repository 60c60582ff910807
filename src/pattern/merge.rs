//! The later merge step: templates the stateless rules could not see as one (a name without a
//! key word before it: `removing kshell from xinetd`, `removing rsync from xinetd`, ...) are
//! merged by looking at the catalogue of templates, not at single messages. Templates with the
//! same number of words that differ in exactly one word, not the first (it names the event more
//! often than not), with at least two other constant words, where at least `min_values`
//! distinct words occur and none is a verb or function word (STOP: `job started` / `job failed`
//! stay apart), become one template with `<*>` there.
//!
//! Measured (examples/pattern_bench.rs, min_values 5): neutral on LogHub's 2k samples (average
//! 0.938 before and after: Windows and Thunderbird's names gain, BGL's enumerations lose) and
//! on the corpus; without the first-word and two-constants conditions it costs 0.07 (0.872),
//! merging distinct events that differ in one word (`program interrupt: illegal|privileged`).
//! So logmon does not need it; it is here, measured, for catalogues where names without key
//! words abound. It needs the set of templates a service has produced,
//! so it runs where that set is (in the database, on `log_patterns`), after the fact:
//!
//! ```sql
//! -- For one service: each template's merged template, where one applies.
//! WITH t AS (SELECT id, template, string_to_array(template, ' ') AS w FROM log_patterns WHERE service = $1),
//!      pos AS (SELECT id, array_length(w, 1) AS n, w[p] AS val,
//!                     array_to_string(w[:p - 1] || '<*>'::text || w[p + 1:], ' ') AS skeleton
//!                FROM t, generate_subscripts(w, 1) AS p
//!               WHERE p > 1 AND w[p] <> '<*>'
//!                 AND cardinality(array_remove(w, '<*>')) >= 3),
//!      grp AS (SELECT skeleton, n, count(*) AS members FROM pos GROUP BY skeleton, n
//!               HAVING count(*) >= 5 AND NOT bool_or(lower(val COLLATE "C") = ANY (log_template_words('stop'))))
//! SELECT DISTINCT ON (id) id, skeleton AS merged_template, pattern_id(skeleton) AS merged_id
//!   FROM pos JOIN grp USING (skeleton, n) ORDER BY id, members DESC, skeleton;
//! ```
//!
//! Counts stay exact: a merged pattern's count is the sum of its members' counts.
use std::collections::{BTreeMap, HashMap};

use super::WILDCARD;
use super::scan::STOP;

/// For each template that merges, the template it merges into. `templates` are distinct.
pub fn merge_similar<'a>(templates: impl IntoIterator<Item = &'a str>, min_values: usize) -> HashMap<&'a str, String> {
    // skeleton (the template with one word replaced by <*>) -> the templates that have it
    let mut groups: BTreeMap<String, Vec<&'a str>> = BTreeMap::new();
    // a word that disqualifies its skeleton: a verb or function word varies meaning, not a name
    let mut spoiled: BTreeMap<String, bool> = BTreeMap::new();
    for t in templates {
        let words: Vec<&str> = t.split(' ').collect();
        let constants = words.iter().filter(|w| **w != WILDCARD).count();
        for (p, w) in words.iter().enumerate() {
            // The first word names the event more often than not (`onStandStepChanged <*>`),
            // and a skeleton needs two constant words left to be a template at all.
            if p == 0 || *w == WILDCARD || constants < 3 {
                continue;
            }
            let mut skeleton = words.clone();
            skeleton[p] = WILDCARD;
            let skeleton = skeleton.join(" ");
            let stop = STOP.iter().any(|s| w.as_bytes().eq_ignore_ascii_case(s));
            *spoiled.entry(skeleton.clone()).or_default() |= stop;
            groups.entry(skeleton).or_default().push(t);
        }
    }
    let mut best: HashMap<&'a str, (usize, &str)> = HashMap::new();
    for (skeleton, members) in &groups {
        if members.len() < min_values || spoiled[skeleton] {
            continue;
        }
        for &m in members {
            let e = best.entry(m).or_insert((0, skeleton));
            // The largest group wins; BTreeMap order breaks ties deterministically.
            if members.len() > e.0 {
                *e = (members.len(), skeleton);
            }
        }
    }
    best.into_iter().map(|(t, (_, s))| (t, s.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_one_position_merge_and_verbs_do_not() {
        let names = ["removing ftp from xinetd", "removing rsync from xinetd", "removing kshell from xinetd"];
        let names = [&names[..], &["removing time from xinetd", "removing eklogin from xinetd"]].concat();
        let verbs = [
            "job nightly <*> started",
            "job nightly <*> failed",
            "job nightly <*> finished",
            "job nightly <*> stopped",
            "job nightly <*> killed",
        ];
        let few = ["service api is up", "service web is up"];
        let first = [
            "onStart <*> done now",
            "onStop <*> done now",
            "onPause <*> done now",
            "onResume <*> done now",
            "onExit <*> done now",
        ];
        let merged = merge_similar(names.iter().chain(&verbs).chain(&few).chain(&first).copied(), 5);
        for n in &names {
            assert_eq!(merged.get(n).map(String::as_str), Some("removing <*> from xinetd"), "{n}");
        }
        for t in verbs.iter().chain(&few).chain(&first) {
            assert!(!merged.contains_key(t), "{t} must stay apart");
        }
    }
}
