//! Turning a customer question into a tantivy query: analysing it like the passages, joining
//! compound words and correcting typos against what is indexed, adding the indexed synonyms, and
//! weighting each term per field, restricted to documents effective on the given day (see the
//! "Retrieval" section of [`super::knowledge_base`]).

use std::ops::Bound;

use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{Searcher, Term};

use super::analyzer::{analyze_query, query_compounds};
use super::config::{KbConfig, KbError};
use super::date::Date;
use super::index::{PassageIndex, is_correctable};
use super::synonyms::synonyms_of;

/// The terms to search for `query`: analysed without stop words, with compound words joined and,
/// if [`KbConfig::spelling_correction`] is on, misspelt English words corrected.
pub(super) fn query_terms(
    index: &PassageIndex,
    searcher: &Searcher,
    config: &KbConfig,
    query: &str,
) -> Result<Vec<String>, KbError> {
    let mut query_terms = analyze_query(query, config.analyzer);
    join_compounds(index, searcher, config, query, &mut query_terms)?;
    if config.spelling_correction {
        correct_spelling(index, searcher, &mut query_terms)?;
    }
    Ok(query_terms)
}

/// The query for `query_terms` and their indexed synonyms in the passage text, title and
/// question fields (boosted as configured), over the documents effective on `today`.
pub(super) fn build_query(
    index: &PassageIndex,
    searcher: &Searcher,
    config: &KbConfig,
    query_terms: &[String],
    today: Date,
) -> Result<BooleanQuery, KbError> {
    let synonyms = indexed_synonyms(index, searcher, config, query_terms)?;
    Ok(weighted_query(index, config, query_terms, &synonyms, today))
}

/// The built-in synonyms of the query terms that are indexed and not already in the query.
fn indexed_synonyms(
    index: &PassageIndex,
    searcher: &Searcher,
    config: &KbConfig,
    query_terms: &[String],
) -> Result<Vec<String>, KbError> {
    let mut synonyms: Vec<String> = Vec::new();
    if config.synonym_boost <= 0.0 {
        return Ok(synonyms);
    }
    for term in query_terms {
        for synonym in synonyms_of(term, config.analyzer.english_stemming) {
            if query_terms.contains(&synonym) || synonyms.contains(&synonym) {
                continue;
            }
            let indexed = Term::from_field_text(index.fields().body, &synonym);
            if searcher.doc_freq(&indexed)? > 0 {
                synonyms.push(synonym);
            }
        }
    }
    Ok(synonyms)
}

fn weighted_query(
    index: &PassageIndex,
    config: &KbConfig,
    query_terms: &[String],
    synonyms: &[String],
    today: Date,
) -> BooleanQuery {
    let fields = index.fields();
    let weighted_fields = [
        (fields.body, 1.0),
        (fields.title, config.title_boost),
        (fields.question, config.question_boost),
    ];
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let weighted_terms = query_terms
        .iter()
        .map(|term| (term, 1.0))
        .chain(synonyms.iter().map(|term| (term, config.synonym_boost)));
    for (term_text, term_weight) in weighted_terms {
        for (field, field_boost) in weighted_fields {
            let boost = field_boost * term_weight;
            if boost <= 0.0 {
                continue;
            }
            let term_query: Box<dyn Query> = Box::new(TermQuery::new(
                Term::from_field_text(field, term_text),
                IndexRecordOption::WithFreqs,
            ));
            let clause: Box<dyn Query> = if boost == 1.0 {
                term_query
            } else {
                Box::new(BoostQuery::new(term_query, boost))
            };
            clauses.push((Occur::Should, clause));
        }
    }
    let today_key = today.ordinal_key();
    let starts_later = RangeQuery::new(
        Bound::Excluded(Term::from_field_u64(fields.effective_from, today_key)),
        Bound::Unbounded,
    );
    let ended_before = RangeQuery::new(
        Bound::Unbounded,
        Bound::Excluded(Term::from_field_u64(fields.effective_to, today_key)),
    );
    BooleanQuery::new(vec![
        (Occur::Must, Box::new(BooleanQuery::new(clauses))),
        (Occur::MustNot, Box::new(starts_later)),
        (Occur::MustNot, Box::new(ended_before)),
    ])
}

/// Replaces two adjacent query words by their concatenation when the latter is indexed
/// ("git hub" → "github", "e-mail" → "email").
fn join_compounds(
    index: &PassageIndex,
    searcher: &Searcher,
    config: &KbConfig,
    query: &str,
    query_terms: &mut Vec<String>,
) -> Result<(), KbError> {
    for compound in query_compounds(query, config.analyzer) {
        if query_terms.contains(&compound.joined) {
            continue;
        }
        let joined_term = Term::from_field_text(index.fields().body, &compound.joined);
        if searcher.doc_freq(&joined_term)? == 0 {
            continue;
        }
        query_terms.retain(|term| !compound.parts.contains(term));
        query_terms.push(compound.joined);
    }
    Ok(())
}

/// Replaces each English query term absent from the index by the most frequent indexed term
/// one edit away (deletion, insertion, substitution or transposition), if any.
fn correct_spelling(
    index: &PassageIndex,
    searcher: &Searcher,
    query_terms: &mut Vec<String>,
) -> Result<(), KbError> {
    let document_frequency =
        |term: &str| searcher.doc_freq(&Term::from_field_text(index.fields().body, term));
    let mut corrected = Vec::with_capacity(query_terms.len());
    for term in query_terms.drain(..) {
        if !is_correctable(&term) || document_frequency(&term)? > 0 {
            corrected.push(term);
            continue;
        }
        let candidates = index.known_terms(single_edits(&term));
        let mut best: Option<(u64, String)> = None;
        for candidate in candidates {
            let frequency = document_frequency(&candidate)?;
            if frequency > 0 && best.as_ref().is_none_or(|(top, _)| frequency > *top) {
                best = Some((frequency, candidate));
            }
        }
        corrected.push(best.map_or(term, |(_, candidate)| candidate));
    }
    for term in corrected {
        if !query_terms.contains(&term) {
            query_terms.push(term);
        }
    }
    Ok(())
}

/// Every string one edit away from the lowercase ASCII `word`.
fn single_edits(word: &str) -> impl Iterator<Item = String> + '_ {
    let bytes = word.as_bytes();
    let length = bytes.len();
    let letters = b'a'..=b'z';
    let from_bytes = |edited: Vec<u8>| String::from_utf8(edited).unwrap_or_default();
    let deletions = (0..length).map(move |index| {
        let mut edited = bytes.to_vec();
        edited.remove(index);
        from_bytes(edited)
    });
    let transpositions = (0..length.saturating_sub(1)).map(move |index| {
        let mut edited = bytes.to_vec();
        edited.swap(index, index + 1);
        from_bytes(edited)
    });
    let substitutions = (0..length).flat_map(move |index| {
        letters.clone().map(move |letter| {
            let mut edited = bytes.to_vec();
            edited[index] = letter;
            from_bytes(edited)
        })
    });
    let insertions = (0..=length).flat_map(move |index| {
        (b'a'..=b'z').map(move |letter| {
            let mut edited = bytes.to_vec();
            edited.insert(index, letter);
            from_bytes(edited)
        })
    });
    deletions
        .chain(transpositions)
        .chain(substitutions)
        .chain(insertions)
        .filter(move |candidate| candidate != word)
}

#[cfg(test)]
mod tests {
    use crate::kb::date::Date;
    use crate::kb::document::Lang;
    use crate::kb::ingest::faq_document;
    use crate::kb::knowledge_base::{KbConfig, KnowledgeBase};

    fn date(text: &str) -> Date {
        text.parse().expect("valid date")
    }

    #[test]
    fn effective_window_filters_documents() {
        let knowledge_base = KnowledgeBase::new(KbConfig::default()).expect("knowledge base");
        let mut promo = faq_document("promo-double-11", "双十一有什么优惠？", "全场满300减50。");
        promo.effective_from = Some(date("2026-10-20"));
        promo.effective_to = Some(date("2026-11-12"));
        let mut everyday = faq_document("promo-everyday", "平时有什么优惠？", "新客首单立减10元。");
        everyday.lang = Lang::Zh;
        knowledge_base
            .upsert_documents(vec![promo, everyday])
            .expect("upsert");
        let ids = |day: &str| -> Vec<String> {
            knowledge_base
                .search("优惠", date(day), 5)
                .into_iter()
                .map(|hit| hit.document_id)
                .collect()
        };
        assert_eq!(ids("2026-10-19"), vec!["promo-everyday"]);
        assert!(ids("2026-10-20").contains(&"promo-double-11".to_string()));
        assert!(ids("2026-11-11").contains(&"promo-double-11".to_string()));
        assert!(ids("2026-11-12").contains(&"promo-double-11".to_string()));
        assert_eq!(ids("2026-11-13"), vec!["promo-everyday"]);
    }
}
