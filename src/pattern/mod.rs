//! Message templates ("patterns"): a log message with its variable parts replaced by `<*>`,
//! and a stable 64-bit id of that template.
mod accuracy;
pub mod corpus;
mod id;
mod scan;

pub use accuracy::grouping_accuracy;
pub use id::pattern_id;
pub use scan::{MAX_CHARS, WILDCARD, WORD_LISTS, template, template_into, template_with};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub id: i64,
    pub template: String,
}

pub fn extract(message: &str) -> Pattern {
    let template = template(message);
    Pattern { id: pattern_id(&template), template }
}

#[cfg(test)]
mod tests;
