//! Agents' seats: profile (groups, capacity, languages), presence set by hand, live connections
//! and the grace period after the last connection drops.

use crest_proto::routing::{
    AgentConnectionChanged, AgentProfileSet, DeskEvent, OfferWithdrawn, Presence, PresenceChanged,
};
use crest_proto::{AgentId, ConversationId};

use super::{Desk, DeskRejection};

impl Desk<'_> {
    pub(super) fn set_agent(
        &mut self,
        agent: &AgentId,
        status: Option<Presence>,
        groups: Option<Vec<String>>,
        capacity: Option<u16>,
        languages: Option<Vec<String>>,
    ) {
        let current = self.state.agents.get(agent).cloned();
        let profile_given = groups.is_some() || capacity.is_some() || languages.is_some();
        if profile_given || current.is_none() {
            let profile = AgentProfileSet {
                agent: agent.clone(),
                groups: groups
                    .or_else(|| current.as_ref().map(|seat| seat.groups.clone()))
                    .unwrap_or_default(),
                capacity: capacity
                    .or_else(|| current.as_ref().map(|seat| seat.capacity))
                    .unwrap_or(1),
                languages: languages
                    .or_else(|| current.as_ref().map(|seat| seat.languages.clone()))
                    .unwrap_or_default(),
            };
            let unchanged = current.as_ref().is_some_and(|seat| {
                seat.groups == profile.groups
                    && seat.capacity == profile.capacity
                    && seat.languages == profile.languages
            });
            if !unchanged {
                self.emit(DeskEvent::AgentProfileSet(profile));
            }
        }
        let old_status = current.map_or(Presence::Offline, |seat| seat.status);
        if let Some(status) = status
            && status != old_status
        {
            self.emit(DeskEvent::PresenceChanged(PresenceChanged {
                agent: agent.clone(),
                status,
                reason: "api".to_owned(),
            }));
            if status != Presence::Online {
                self.withdraw_offers_of(agent, "agent_unavailable");
            }
        }
    }

    /// The agent's first live connection opened: a pending grace period ends, and an agent the
    /// desk turned away for a dropped connection is online again.
    pub(super) fn agent_connected(&mut self, agent: AgentId) -> Result<(), DeskRejection> {
        let Some(seat) = self.state.agents.get(&agent) else {
            return Err(DeskRejection::UnknownAgent(agent.key().to_owned()));
        };
        let back_from_auto_away = seat.status == Presence::Away && seat.auto_away;
        if !seat.connected || seat.away_at_ms.is_some() {
            self.emit(DeskEvent::AgentConnectionChanged(AgentConnectionChanged {
                agent: agent.clone(),
                connected: true,
                away_at_ms: None,
            }));
        }
        if back_from_auto_away {
            self.emit(DeskEvent::PresenceChanged(PresenceChanged {
                agent,
                status: Presence::Online,
                reason: "connected".to_owned(),
            }));
        }
        Ok(())
    }

    /// The agent's last live connection closed: an online agent stays online for the grace period.
    pub(super) fn agent_disconnected(&mut self, agent: AgentId) {
        let Some(seat) = self.state.agents.get(&agent) else {
            return;
        };
        let away_at_ms = (seat.status == Presence::Online)
            .then(|| self.now_ms + self.settings.presence_grace_ms);
        self.emit(DeskEvent::AgentConnectionChanged(AgentConnectionChanged {
            agent,
            connected: false,
            away_at_ms,
        }));
    }

    pub(super) fn withdraw_offers_of(&mut self, agent: &AgentId, reason: &str) {
        let offers: Vec<ConversationId> = self
            .state
            .agents
            .get(agent)
            .map(|seat| seat.offers.iter().cloned().collect())
            .unwrap_or_default();
        for conversation in offers {
            self.emit(DeskEvent::OfferWithdrawn(OfferWithdrawn {
                conversation,
                agent: agent.clone(),
                reason: reason.to_owned(),
            }));
        }
    }
}
