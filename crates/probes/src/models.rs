//! Collecting the model ids a provider lists, capped, and finding the wanted one.

/// How a provider's model ids compare with the model a config names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matching {
    /// Ids compare as they are.
    Exact,
    /// Ollama: `llama3.1` is `llama3.1:latest`.
    OllamaTag,
    /// Bedrock: a cross-region inference profile `us.anthropic.…` names the model
    /// `anthropic.…`.
    BedrockProfile,
}

impl Matching {
    fn matches(self, wanted: &str, id: &str) -> bool {
        if wanted == id {
            return true;
        }
        match self {
            Self::Exact => false,
            Self::OllamaTag => {
                let with_tag = |s: &str| {
                    if s.contains(':') {
                        s.to_owned()
                    } else {
                        format!("{s}:latest")
                    }
                };
                with_tag(wanted) == with_tag(id)
            }
            Self::BedrockProfile => wanted.split_once('.').is_some_and(|(geo, rest)| {
                matches!(geo, "us" | "eu" | "apac" | "jp" | "au" | "ca" | "global") && rest == id
            }),
        }
    }
}

/// The model ids seen over one or more pages.
#[derive(Debug)]
pub(crate) struct ModelList {
    wanted: Option<String>,
    matching: Matching,
    cap: usize,
    ids: Vec<String>,
    total: usize,
    found: bool,
}

impl ModelList {
    pub(crate) fn new(wanted: Option<&str>, matching: Matching, cap: usize) -> Self {
        Self {
            wanted: wanted.map(str::to_owned).filter(|w| !w.trim().is_empty()),
            matching,
            cap,
            ids: Vec::new(),
            total: 0,
            found: false,
        }
    }

    /// Records one id (ignored when blank).
    pub(crate) fn push(&mut self, id: &str) {
        let id = id.trim();
        if id.is_empty() {
            return;
        }
        self.total += 1;
        if let Some(w) = &self.wanted {
            if !self.found && self.matching.matches(w, id) {
                self.found = true;
            }
        }
        if self.ids.len() < self.cap {
            self.ids.push(id.to_owned());
        }
    }

    /// Whether another page could change the outcome.
    pub(crate) fn wants_more(&self) -> bool {
        let need_model = self.wanted.is_some() && !self.found;
        need_model || self.ids.len() < self.cap
    }

    pub(crate) fn found(&self) -> bool {
        self.found
    }

    pub(crate) fn wanted(&self) -> Option<&str> {
        self.wanted.as_deref()
    }

    pub(crate) fn total(&self) -> usize {
        self.total
    }

    pub(crate) fn into_ids(self) -> Vec<String> {
        self.ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_finds() {
        let mut list = ModelList::new(Some("c"), Matching::Exact, 2);
        for id in ["a", "b", " ", "c", "d"] {
            list.push(id);
        }
        assert!(list.found());
        assert_eq!(list.total(), 4);
        assert!(!list.wants_more());
        assert_eq!(list.into_ids(), ["a", "b"]);
    }

    #[test]
    fn provider_matching_rules() {
        assert!(Matching::OllamaTag.matches("llama3.1", "llama3.1:latest"));
        assert!(!Matching::OllamaTag.matches("llama3.1", "llama3.1:8b"));
        assert!(Matching::OllamaTag.matches("llama3.1:8b", "llama3.1:8b"));
        assert!(Matching::BedrockProfile.matches(
            "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
            "anthropic.claude-3-5-sonnet-20240620-v1:0"
        ));
        assert!(!Matching::Exact.matches("gpt-4o", "gpt-4o-mini"));
    }
}
