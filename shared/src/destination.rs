//! Which addresses a webhook may be sent to. The AWS runtime refuses
//! private, loopback and link-local destinations unless allow-listed, so a
//! webhook URL cannot be used to reach inside the network it runs in.

use std::net::IpAddr;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DestinationPolicy {
    /// Refuse internal addresses (loopback, private, link-local, ...).
    pub block_internal: bool,
    /// Internal networks allowed all the same.
    pub allow: Vec<Network>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// `10.0.0.0/8`, `fd00::/8` or a single address.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not an IP address or CIDR network");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let address: IpAddr = address.trim().parse().map_err(|_| bad())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { address, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, bits) = match (self.address, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let shift = bits - self.prefix as u32;
        shift >= bits || (a >> shift) == (b >> shift)
    }
}

impl DestinationPolicy {
    /// Whether a webhook may go to this address; the error says why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        if !self.block_internal || !is_internal(ip) || self.allow.iter().any(|n| n.contains(ip)) {
            return Ok(());
        }
        Err(format!(
            "destination {ip} is an internal address; allow-list it to deliver there"
        ))
    }
}

/// Loopback, private, link-local, shared (CGNAT), unspecified, multicast and
/// broadcast addresses, IPv4-mapped ones included.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(ip(internal)), "{internal}");
        }
        for public in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(!is_internal(ip(public)), "{public}");
        }
    }

    #[test]
    fn allow_list_opens_internal_networks() {
        let policy = DestinationPolicy {
            block_internal: true,
            allow: vec![
                Network::parse("10.0.0.0/8").unwrap(),
                Network::parse("::1").unwrap(),
            ],
        };
        assert!(policy.check(ip("10.9.9.9")).is_ok());
        assert!(policy.check(ip("::1")).is_ok());
        assert!(policy
            .check(ip("127.0.0.1"))
            .unwrap_err()
            .contains("internal"));
        assert!(policy.check(ip("192.168.0.1")).is_err());
        assert!(policy.check(ip("1.1.1.1")).is_ok());
        assert!(DestinationPolicy::default().check(ip("127.0.0.1")).is_ok());
    }

    #[test]
    fn networks_parse() {
        assert!(Network::parse("0.0.0.0/0").unwrap().contains(ip("9.9.9.9")));
        assert!(!Network::parse("10.0.0.0/8")
            .unwrap()
            .contains(ip("11.0.0.1")));
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("ten").is_err());
    }
}
