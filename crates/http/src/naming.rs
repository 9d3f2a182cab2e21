//! How each surface names providers: the catalog's ids and aliases, or a fixed list of its
//! own names (`google` for the catalog's `gemini` on the provider configuration API).

use llm_settings_domain::error::shown;
use llm_settings_domain::{Catalog, ProviderId};

use crate::error::ApiError;

/// A surface's provider names.
#[derive(Debug, Clone, Copy)]
pub enum Naming {
    /// The catalog's ids and aliases. `single_key` keeps only providers configured with one
    /// API key (their requests carry `api_key` and nothing else); `leading` are listed first.
    Catalog {
        single_key: bool,
        leading: &'static [&'static str],
    },
    /// The surface's own names and the catalog id each one is, in display order.
    Fixed(&'static [(&'static str, &'static str)]),
}

/// Translation between a surface's provider names and the catalog's providers.
pub trait ProviderNames {
    /// The offered provider a name sent to the surface means. The error (400, field
    /// `provider`) repeats the name only when it looks like one.
    fn provider(&self, catalog: &Catalog, name: &str) -> Result<ProviderId, ApiError>;
    /// The surface's name of a provider.
    fn wire_name(&self, provider: ProviderId) -> &'static str;
    /// Whether the surface shows configs of this provider.
    fn covers(&self, provider: ProviderId) -> bool;
    /// The offered providers of the surface, in display order.
    fn listed(&self, catalog: &Catalog) -> Vec<ProviderId>;
    /// The surface's names, for messages.
    fn known_names(&self, catalog: &Catalog) -> String {
        let names: Vec<&str> = self
            .listed(catalog)
            .into_iter()
            .map(|p| self.wire_name(p))
            .collect();
        names.join(", ")
    }
}

/// Whether a provider is configured with a single API key (and optional extras).
fn single_key(p: ProviderId) -> bool {
    let spec = p.spec();
    spec.primary_secret().map(|f| f.name) == Some("api_key")
        && spec
            .fields
            .iter()
            .all(|f| f.name == "api_key" || !f.required)
}

impl ProviderNames for Naming {
    fn provider(&self, catalog: &Catalog, name: &str) -> Result<ProviderId, ApiError> {
        let found = match self {
            Self::Catalog { .. } => catalog
                .resolve(name)
                .map_err(|e| ApiError::from(e).with_field("provider"))?,
            Self::Fixed(names) => names
                .iter()
                .find(|(wire, _)| *wire == name)
                .and_then(|(_, id)| ProviderId::lookup(id))
                .filter(|p| catalog.offers(*p))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "Unknown provider: {}; expected one of {}",
                        shown(name),
                        self.known_names(catalog)
                    ))
                    .with_field("provider")
                })?,
        };
        if !self.covers(found) {
            return Err(ApiError::invalid(format!(
                "provider {found} needs more than an API key; configure it through the provider configuration API"
            ))
            .with_field("provider"));
        }
        Ok(found)
    }

    fn wire_name(&self, provider: ProviderId) -> &'static str {
        match self {
            Self::Catalog { .. } => provider.as_str(),
            Self::Fixed(names) => names
                .iter()
                .find(|(_, id)| *id == provider.as_str())
                .map_or(provider.as_str(), |(wire, _)| wire),
        }
    }

    fn covers(&self, provider: ProviderId) -> bool {
        match self {
            Self::Catalog {
                single_key: only, ..
            } => !only || single_key(provider),
            Self::Fixed(names) => names.iter().any(|(_, id)| *id == provider.as_str()),
        }
    }

    fn listed(&self, catalog: &Catalog) -> Vec<ProviderId> {
        match self {
            Self::Catalog { leading, .. } => {
                let mut providers: Vec<ProviderId> =
                    catalog.providers().filter(|p| self.covers(*p)).collect();
                providers.sort_by_key(|p| {
                    leading
                        .iter()
                        .position(|l| *l == p.as_str())
                        .unwrap_or(leading.len())
                });
                providers
            }
            Self::Fixed(names) => names
                .iter()
                .filter_map(|(_, id)| ProviderId::lookup(id))
                .filter(|p| catalog.offers(*p))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surface::{NATIVE, PROVIDER_CONFIG, PROVIDER_KEYS};

    #[test]
    fn each_surface_names_providers_its_own_way() {
        let catalog = Catalog::all();
        let google = PROVIDER_CONFIG.names.provider(&catalog, "google").unwrap();
        assert_eq!(google.as_str(), "gemini");
        assert_eq!(PROVIDER_CONFIG.names.wire_name(google), "google");
        assert!(PROVIDER_CONFIG.names.provider(&catalog, "gemini").is_err());
        assert!(PROVIDER_KEYS.names.provider(&catalog, "xai").is_err());
        let err = NATIVE.names.provider(&catalog, "azure").unwrap_err();
        assert!(err.message.contains("needs more than an API key"));
        assert_eq!(
            NATIVE.names.provider(&catalog, "google").unwrap().as_str(),
            "gemini"
        );
        let listed = NATIVE.names.listed(&catalog);
        assert_eq!(listed[0].as_str(), "anthropic");
        assert!(!listed.iter().any(|p| p.as_str() == "azure"));
        let err = PROVIDER_KEYS
            .names
            .provider(&catalog, "sk-proj-pasted-key-0123456789abcdef")
            .unwrap_err();
        assert!(!err.message.contains("pasted"));
    }
}
