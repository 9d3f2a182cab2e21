//! Outbound policy: which addresses a probe or a forwarded call may connect to.
//!
//! Cloud providers may only reach public addresses. Local providers (`ollama`,
//! `deepseek_local`) may also reach the loopback and private hosts and networks the operator
//! lists for them (`LLM_SETTINGS_LOCAL_PROVIDER_HOSTS`, loopback only by default), so that a
//! user cannot map the internal network through them. Hosts and networks in the operator's
//! allow list (`LLM_SETTINGS_PROBE_ALLOW_HOSTS`) may be reached by any provider. Cloud
//! metadata, unspecified, multicast and broadcast addresses are never reachable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use url::{Host, Url};

/// An entry of a host list (`LLM_SETTINGS_PROBE_ALLOW_HOSTS`,
/// `LLM_SETTINGS_LOCAL_PROVIDER_HOSTS`) that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid entry {entry:?}: {reason}")]
pub struct AllowListError {
    /// The offending entry, as written.
    pub entry: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Hosts, `host:port` pairs and networks that may be reached although they are private.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    nets: Vec<IpNet>,
    hosts: Vec<AllowedHost>,
}

/// A host (name or address) allowed on one port or on every port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Name(String),
    Ip(IpAddr),
}

impl AllowList {
    /// The empty list: nothing private is reachable except by local providers.
    pub fn none() -> Self {
        Self::default()
    }

    /// Loopback only: `localhost`, `127.0.0.0/8` and `::1` (the default reach of local
    /// providers).
    pub fn loopback() -> Self {
        Self {
            nets: vec![
                IpNet::from(Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)),
                IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ],
            hosts: vec![AllowedHost {
                host: HostPattern::Name("localhost".to_owned()),
                port: None,
            }],
        }
    }

    /// Parses a comma-separated host list (`LLM_SETTINGS_PROBE_ALLOW_HOSTS`,
    /// `LLM_SETTINGS_LOCAL_PROVIDER_HOSTS`): host names,
    /// `host:port`, IP addresses, `[v6]:port`, and IPv4/IPv6 CIDRs. Blank entries are ignored.
    pub fn parse(value: &str) -> Result<Self, AllowListError> {
        let mut list = Self::default();
        for raw in value.split(',') {
            let entry = raw.trim();
            if entry.is_empty() {
                continue;
            }
            let err = |reason| AllowListError {
                entry: entry.to_owned(),
                reason,
            };
            if entry.contains('/') {
                let net = IpNet::from_str(entry).map_err(|_| err("not a valid CIDR"))?;
                list.nets.push(net.trunc());
            } else if let Ok(ip) = IpAddr::from_str(entry) {
                list.nets.push(IpNet::from(ip));
            } else if let Ok(addr) = SocketAddr::from_str(entry) {
                if addr.port() == 0 {
                    return Err(err("port must not be 0"));
                }
                list.hosts.push(AllowedHost {
                    host: HostPattern::Ip(addr.ip()),
                    port: Some(addr.port()),
                });
            } else if entry.starts_with('[') {
                let inner = entry.trim_start_matches('[').trim_end_matches(']');
                let ip = Ipv6Addr::from_str(inner).map_err(|_| err("not a valid IPv6 address"))?;
                list.nets.push(IpNet::from(IpAddr::V6(ip)));
            } else {
                let (name, port) = match entry.rsplit_once(':') {
                    Some((name, port)) => {
                        let port = port
                            .parse::<u16>()
                            .ok()
                            .filter(|p| *p != 0)
                            .ok_or_else(|| err("not a valid port"))?;
                        (name, Some(port))
                    }
                    None => (entry, None),
                };
                let name = normalise_name(name).ok_or_else(|| err("not a valid host name"))?;
                list.hosts.push(AllowedHost {
                    host: HostPattern::Name(name),
                    port,
                });
            }
        }
        Ok(list)
    }

    /// Whether the list has no entry.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.hosts.is_empty()
    }

    /// Whether the URL's host (and port) is named by a host entry.
    pub(crate) fn names_host(&self, host: &Host<&str>, port: u16) -> bool {
        self.hosts.iter().any(|entry| {
            let host_matches = match (&entry.host, host) {
                (HostPattern::Name(name), Host::Domain(domain)) => {
                    normalise_name(domain).is_some_and(|d| d == *name)
                }
                (HostPattern::Ip(ip), Host::Ipv4(v4)) => *ip == IpAddr::V4(*v4),
                (HostPattern::Ip(ip), Host::Ipv6(v6)) => *ip == IpAddr::V6(*v6),
                _ => false,
            };
            host_matches && entry.port.is_none_or(|p| p == port)
        })
    }

    /// Whether an allowed network contains the address (or the IPv4 address it embeds).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let embedded = embedded_ipv4(ip).map(IpAddr::V4);
        self.nets
            .iter()
            .any(|net| net.contains(&ip) || embedded.is_some_and(|e| net.contains(&e)))
    }
}

impl FromStr for AllowList {
    type Err = AllowListError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Lower-cases a host name, drops a trailing dot and checks its characters.
fn normalise_name(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    valid.then_some(name)
}

/// What kind of address an IP is, for the outbound policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressClass {
    /// A globally routable unicast address.
    Public,
    /// Loopback, RFC 1918, CGNAT, link-local or unique-local: the operator's own network.
    Private,
    /// Documentation, benchmarking and other reserved ranges: not a real provider.
    Reserved,
    /// Cloud metadata, unspecified, multicast or broadcast: never a target.
    Forbidden,
}

/// Cloud instance metadata endpoints (AWS, GCP, Azure, ECS, EKS, Alibaba, Oracle).
const METADATA_V4: [Ipv4Addr; 5] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 170, 23),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
];
const METADATA_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254),
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0023),
];

/// Classifies an address; IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64,
/// 6to4) are classified by the address they embed.
pub(crate) fn classify(ip: IpAddr) -> AddressClass {
    if let Some(v4) = embedded_ipv4(ip) {
        return classify_v4(v4);
    }
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    Ipv4Net::new(Ipv4Addr::from(net), prefix).is_ok_and(|n| n.contains(&ip))
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u8) -> bool {
    Ipv6Net::new(Ipv6Addr::from(net), prefix).is_ok_and(|n| n.contains(&ip))
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    if METADATA_V4.contains(&ip)
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || in_v4(ip, [0, 0, 0, 0], 8)
    {
        return AddressClass::Forbidden;
    }
    if ip.is_loopback() || ip.is_private() || ip.is_link_local() || in_v4(ip, [100, 64, 0, 0], 10) {
        return AddressClass::Private;
    }
    let reserved = [
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // TEST-NET-1
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // TEST-NET-2
        ([203, 0, 113, 0], 24),  // TEST-NET-3
        ([240, 0, 0, 0], 4),     // reserved
    ];
    if reserved.iter().any(|(net, p)| in_v4(ip, *net, *p)) {
        return AddressClass::Reserved;
    }
    AddressClass::Public
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if METADATA_V6.contains(&ip) || ip.is_unspecified() || ip.is_multicast() {
        return AddressClass::Forbidden;
    }
    if ip.is_loopback()
        || in_v6(ip, [0xfe80, 0, 0, 0, 0, 0, 0, 0], 10) // link-local
        || in_v6(ip, [0xfc00, 0, 0, 0, 0, 0, 0, 0], 7)
    // unique-local
    {
        return AddressClass::Private;
    }
    let reserved = [
        ([0, 0, 0, 0, 0, 0, 0, 0], 8),            // other IPv4-era forms
        ([0x0100, 0, 0, 0, 0, 0, 0, 0], 64),      // discard
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),      // Teredo
        ([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32), // documentation
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),      // site-local (deprecated)
    ];
    if reserved.iter().any(|(net, p)| in_v6(ip, *net, *p)) {
        return AddressClass::Reserved;
    }
    AddressClass::Public
}

/// The IPv4 address embedded in an IPv6 address, for the forms that route to it:
/// IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`
/// (and `64:ff9b:1::/48`) and 6to4 `2002:AABB:CCDD::`.
fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else {
        return None;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let last32 = Ipv4Addr::new(
        (s[6] >> 8) as u8,
        (s[6] & 0xff) as u8,
        (s[7] >> 8) as u8,
        (s[7] & 0xff) as u8,
    );
    // IPv4-compatible, excluding :: and ::1 which are IPv6's own.
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return Some(last32);
    }
    if in_v6(v6, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
        || in_v6(v6, [0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48)
    {
        return Some(last32);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            (s[1] & 0xff) as u8,
            (s[2] >> 8) as u8,
            (s[2] & 0xff) as u8,
        ));
    }
    None
}

/// Why a target was refused; shown to the user, so it never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Refusal(pub(crate) String);

/// The operator's outbound configuration: hosts any provider may reach, and hosts local
/// providers may reach.
#[derive(Debug, Clone)]
pub(crate) struct Reach {
    /// `LLM_SETTINGS_PROBE_ALLOW_HOSTS`.
    pub(crate) allow: AllowList,
    /// `LLM_SETTINGS_LOCAL_PROVIDER_HOSTS`.
    pub(crate) local_hosts: AllowList,
}

impl Reach {
    /// The rules for a cloud (`local == false`) or local provider.
    pub(crate) fn policy(&self, local: bool) -> TargetPolicy<'_> {
        TargetPolicy {
            allow: &self.allow,
            local: local.then_some(&self.local_hosts),
        }
    }
}

/// The outbound rules for one call: the operator's allow list and, for a local provider,
/// the hosts local providers may reach.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TargetPolicy<'a> {
    pub(crate) allow: &'a AllowList,
    pub(crate) local: Option<&'a AllowList>,
}

/// A URL that passed the static checks, with what the address check needs.
#[derive(Debug, Clone)]
pub(crate) struct CheckedUrl {
    /// The host as it appears in the URL (domain lower-cased by the parser; IPs in brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The host (and port) is named by the allow list (or, for a local provider, by the
    /// local providers' list): it may resolve to private addresses.
    pub(crate) host_allowed: bool,
}

impl TargetPolicy<'_> {
    /// Checks scheme, credentials and host of an already parsed URL; IP-literal hosts (in any
    /// spelling the parser normalises, e.g. `2130706433` or `0x7f.1`) are checked here.
    pub(crate) fn check_url(&self, url: &Url) -> Result<CheckedUrl, Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal("only http and https endpoints are allowed".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal("endpoint URLs must not contain credentials".into()));
        }
        let host = url
            .host()
            .ok_or_else(|| Refusal("the endpoint URL has no host".into()))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Refusal("the endpoint URL has no port".into()))?;
        let host_allowed = self.allow.names_host(&host, port)
            || self.local.is_some_and(|l| l.names_host(&host, port));
        let literal = match host {
            Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            Host::Domain(_) => None,
        };
        if let Some(ip) = literal {
            self.check_address(ip, host_allowed)?;
        }
        let host_text = url
            .host_str()
            .ok_or_else(|| Refusal("the endpoint URL has no host".into()))?;
        Ok(CheckedUrl {
            host: host_text.to_owned(),
            port,
            host_allowed,
        })
    }

    /// Checks one address the host resolved to (or the literal address).
    pub(crate) fn check_address(&self, ip: IpAddr, host_allowed: bool) -> Result<(), Refusal> {
        let class = classify(ip);
        let listed =
            host_allowed || self.allow.contains(ip) || self.local.is_some_and(|l| l.contains(ip));
        let permitted = match class {
            AddressClass::Forbidden => false,
            AddressClass::Public => true,
            AddressClass::Private | AddressClass::Reserved => listed,
        };
        if permitted {
            return Ok(());
        }
        let why = match (class, self.local.is_some()) {
            (AddressClass::Forbidden, _) => {
                "a metadata, unspecified or multicast address, which no provider may reach"
            }
            (AddressClass::Private, true) => {
                "a loopback or private address that LLM_SETTINGS_LOCAL_PROVIDER_HOSTS does not list"
            }
            (AddressClass::Private, false) => {
                "a loopback or private address, which this provider may not reach"
            }
            (AddressClass::Reserved | AddressClass::Public, _) => {
                "a reserved address, which this provider may not reach"
            }
        };
        Err(Refusal(format!("the endpoint resolves to {why}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_addresses() {
        use AddressClass::*;
        let cases = [
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("2606:4700:4700::1111", Public),
            ("127.0.0.1", Private),
            ("127.255.0.9", Private),
            ("10.0.0.1", Private),
            ("172.16.3.4", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("169.254.1.1", Private),
            ("::1", Private),
            ("fe80::1", Private),
            ("fd12::1", Private),
            ("::ffff:127.0.0.1", Private),
            ("::ffff:10.0.0.1", Private),
            ("::127.0.0.1", Private),
            ("64:ff9b::a00:1", Private),
            ("2002:7f00:1::", Private),
            ("169.254.169.254", Forbidden),
            ("::ffff:169.254.169.254", Forbidden),
            ("fd00:ec2::254", Forbidden),
            ("100.100.100.200", Forbidden),
            ("0.0.0.0", Forbidden),
            ("0.1.2.3", Forbidden),
            ("::", Forbidden),
            ("224.0.0.1", Forbidden),
            ("ff02::1", Forbidden),
            ("255.255.255.255", Forbidden),
            ("192.0.2.1", Reserved),
            ("2001:db8::1", Reserved),
            ("240.0.0.1", Reserved),
            ("::ffff:8.8.8.8", Public),
        ];
        for (addr, class) in cases {
            assert_eq!(classify(ip(addr)), class, "{addr}");
        }
    }

    #[test]
    fn parses_allow_list() {
        let list = AllowList::parse(
            " gateway.internal, llm.local:8443 ,10.1.0.0/16,127.0.0.1, [::1]:9000, fd00::/8,,",
        )
        .unwrap();
        assert_eq!(list.nets.len(), 3);
        assert_eq!(list.hosts.len(), 3);
        assert!(list.contains(ip("10.1.2.3")));
        assert!(list.contains(ip("127.0.0.1")));
        assert!(list.contains(ip("::ffff:127.0.0.1")));
        assert!(!list.contains(ip("10.2.0.1")));
        assert!(AllowList::parse("").unwrap().is_empty());
        for bad in [
            "10.0.0.0/33",
            "host:0",
            "host:http",
            "bad host",
            "[zz]",
            "a/b",
        ] {
            assert!(AllowList::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_checks_refuse_literal_spellings_of_loopback() {
        let allow = AllowList::none();
        let policy = TargetPolicy {
            allow: &allow,
            local: None,
        };
        for target in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0:8080/",
        ] {
            let url = Url::parse(target).unwrap();
            assert!(policy.check_url(&url).is_err(), "{target}");
        }
        for refused in [
            "ftp://example.com/",
            "http://user:pw@example.com/",
            "file:///etc/passwd",
        ] {
            assert!(policy.check_url(&Url::parse(refused).unwrap()).is_err());
        }
        assert!(policy
            .check_url(&Url::parse("https://8.8.8.8/").unwrap())
            .is_ok());
        let named = policy
            .check_url(&Url::parse("https://api.openai.com/v1").unwrap())
            .unwrap();
        assert_eq!(
            (named.host.as_str(), named.port, named.host_allowed),
            ("api.openai.com", 443, false)
        );
    }

    #[test]
    fn local_providers_and_allow_list_reach_private_but_never_metadata() {
        let allow = AllowList::parse("127.0.0.1:9000, gateway.internal, 192.0.2.0/24").unwrap();
        let local_hosts =
            AllowList::parse("localhost, 127.0.0.0/8, 10.1.0.0/16, ollama.lan:11434").unwrap();
        let local = TargetPolicy {
            allow: &allow,
            local: Some(&local_hosts),
        };
        let cloud = TargetPolicy {
            allow: &allow,
            local: None,
        };
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(local.check_url(&url("http://127.0.0.1:11434/")).is_ok());
        assert!(local.check_url(&url("http://10.1.2.3/")).is_ok());
        let outside = local.check_url(&url("http://10.0.0.1/")).unwrap_err();
        assert!(
            outside.0.contains("LLM_SETTINGS_LOCAL_PROVIDER_HOSTS"),
            "{outside}"
        );
        assert!(local.check_url(&url("http://169.254.169.254/")).is_err());
        let lan = local.check_url(&url("http://ollama.lan:11434/")).unwrap();
        assert!(lan.host_allowed);
        assert!(
            !local
                .check_url(&url("http://ollama.lan:80/"))
                .unwrap()
                .host_allowed
        );
        assert!(cloud.check_url(&url("http://127.0.0.1:9000/")).is_ok());
        assert!(cloud.check_url(&url("http://127.0.0.1:9001/")).is_err());
        assert!(cloud.check_url(&url("http://192.0.2.7/")).is_ok());
        assert!(cloud.check_url(&url("http://10.1.2.3/")).is_err());
        let gw = cloud
            .check_url(&url("http://Gateway.Internal:8080/"))
            .unwrap();
        assert!(gw.host_allowed);
        assert!(cloud.check_address(ip("10.9.9.9"), gw.host_allowed).is_ok());
        assert!(cloud
            .check_address(ip("169.254.169.254"), gw.host_allowed)
            .is_err());
        assert!(cloud.check_address(ip("10.9.9.9"), false).is_err());
    }

    #[test]
    fn local_providers_default_to_loopback_only() {
        let none = AllowList::none();
        let loopback = AllowList::loopback();
        let local = TargetPolicy {
            allow: &none,
            local: Some(&loopback),
        };
        let url = |s: &str| Url::parse(s).unwrap();
        for ok in [
            "http://127.0.0.1:11434/",
            "http://127.9.9.9/",
            "http://[::1]:11434/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(local.check_url(&url(ok)).is_ok(), "{ok}");
        }
        assert!(
            local
                .check_url(&url("http://localhost:11434/"))
                .unwrap()
                .host_allowed
        );
        for refused in [
            "http://10.0.0.1:11434/",
            "http://192.168.1.10/",
            "http://172.16.0.1/",
            "http://100.64.0.1/",
            "http://169.254.1.1/",
            "http://[fd12::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://167772161/",
            "http://0x0a.0.0.1/",
            "http://012.0.0.1/",
        ] {
            let refusal = local.check_url(&url(refused)).unwrap_err();
            assert!(
                refusal.0.contains("LLM_SETTINGS_LOCAL_PROVIDER_HOSTS"),
                "{refused}: {refusal}"
            );
        }
        for resolved in ["10.0.0.1", "192.168.0.2", "fd00::1"] {
            assert!(
                local.check_address(ip(resolved), false).is_err(),
                "{resolved}"
            );
        }
        assert!(local.check_address(ip("127.0.0.1"), false).is_ok());
        assert!(local.check_address(ip("::1"), false).is_ok());
    }
}
