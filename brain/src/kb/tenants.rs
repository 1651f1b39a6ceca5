//! Knowledge bases of all tenants: nothing is shared between two tenants but the settings.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::date::Date;
use super::document::Document;
use super::knowledge_base::{Hit, KbAnswer, KbConfig, KbError, KnowledgeBase, UpsertOutcome};

/// One [`KnowledgeBase`] per tenant id, created on the first upsert. Shareable across threads.
#[derive(Debug)]
pub struct KnowledgeBases {
    config: KbConfig,
    tenants: RwLock<HashMap<String, Arc<KnowledgeBase>>>,
}

impl Default for KnowledgeBases {
    fn default() -> Self {
        KnowledgeBases::new(KbConfig::default())
    }
}

impl KnowledgeBases {
    /// No tenants yet; every tenant's knowledge base will use `config`.
    pub fn new(config: KbConfig) -> Self {
        KnowledgeBases {
            config,
            tenants: RwLock::new(HashMap::new()),
        }
    }

    /// The knowledge base of a tenant, if it has one.
    pub fn tenant(&self, tenant: &str) -> Option<Arc<KnowledgeBase>> {
        self.tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .cloned()
    }

    fn tenant_or_create(&self, tenant: &str) -> Result<Arc<KnowledgeBase>, KbError> {
        if let Some(existing) = self.tenant(tenant) {
            return Ok(existing);
        }
        let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = tenants.get(tenant) {
            return Ok(existing.clone());
        }
        let created = Arc::new(KnowledgeBase::new(self.config.clone())?);
        tenants.insert(tenant.to_string(), created.clone());
        Ok(created)
    }

    /// Adds or replaces a document in a tenant's knowledge base
    /// (see [`KnowledgeBase::upsert_document`]).
    pub fn upsert_document(
        &self,
        tenant: &str,
        document: Document,
    ) -> Result<UpsertOutcome, KbError> {
        self.tenant_or_create(tenant)?.upsert_document(document)
    }

    /// Adds or replaces several documents of a tenant in one commit
    /// (see [`KnowledgeBase::upsert_documents`]).
    pub fn upsert_documents(
        &self,
        tenant: &str,
        documents: Vec<Document>,
    ) -> Result<Vec<UpsertOutcome>, KbError> {
        self.tenant_or_create(tenant)?.upsert_documents(documents)
    }

    /// Removes a document of a tenant; `false` if it was not there.
    pub fn remove_document(&self, tenant: &str, document_id: &str) -> Result<bool, KbError> {
        match self.tenant(tenant) {
            Some(knowledge_base) => knowledge_base.remove_document(document_id),
            None => Ok(false),
        }
    }

    /// Searches a tenant's knowledge base; empty for a tenant without one.
    pub fn search(&self, tenant: &str, query: &str, today: Date, k: usize) -> Vec<Hit> {
        self.tenant(tenant)
            .map(|knowledge_base| knowledge_base.search(query, today, k))
            .unwrap_or_default()
    }

    /// Answers from a tenant's knowledge base; [`KbAnswer::Unknown`] for a tenant without one.
    pub fn answer(&self, tenant: &str, query: &str, today: Date) -> KbAnswer {
        self.tenant(tenant)
            .map_or(KbAnswer::Unknown, |knowledge_base| {
                knowledge_base.answer(query, today)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::ingest::faq_document;

    #[test]
    fn tenants_are_isolated() {
        let bases = KnowledgeBases::default();
        let today: Date = "2026-06-18".parse().expect("valid date");
        bases
            .upsert_document(
                "acme",
                faq_document("faq-returns", "退货政策是什么？", "七天无理由退货。"),
            )
            .expect("upsert acme");
        bases
            .upsert_document(
                "globex",
                faq_document(
                    "faq-returns",
                    "Return policy?",
                    "30 days, no questions asked.",
                ),
            )
            .expect("upsert globex");

        let acme_hits = bases.search("acme", "退货", today, 10);
        assert_eq!(acme_hits.len(), 1);
        assert!(acme_hits[0].text.contains("七天"));
        assert!(bases.search("globex", "退货", today, 10).is_empty());
        assert!(bases.search("acme", "return policy", today, 10).is_empty());
        assert_eq!(bases.answer("initech", "退货", today), KbAnswer::Unknown);
        assert!(matches!(
            bases.answer("globex", "return policy", today),
            KbAnswer::Answer { .. }
        ));

        // Same document id in two tenants: removing one leaves the other.
        assert!(
            bases
                .remove_document("acme", "faq-returns")
                .expect("remove")
        );
        assert!(bases.search("acme", "退货", today, 10).is_empty());
        assert_eq!(bases.search("globex", "return policy", today, 10).len(), 1);
        assert!(
            !bases
                .remove_document("initech", "faq-returns")
                .expect("no tenant")
        );
    }
}
