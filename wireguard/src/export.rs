//! The configuration a NAS needs to reach the edge: MikroTik RouterOS commands and a
//! wg-quick file. Pure text; what is unknown (a private key shown only once, the RADIUS
//! secret) is left as a placeholder in angle brackets for the operator to fill in.

use std::fmt::Write;
use std::net::IpAddr;

/// What a NAS's configuration is made of.
#[derive(Debug, Clone)]
pub struct NasConfig<'a> {
    pub nas_name: &'a str,
    /// The NAS's address inside the tunnel (its RADIUS source address).
    pub tunnel_address: IpAddr,
    /// The NAS's private key, when the edge generated it and this is the one time it shows.
    pub private_key: Option<&'a str>,
    pub edge_public_key: &'a str,
    /// The edge's address inside the tunnel: its RADIUS server address for the NAS.
    pub edge_address: IpAddr,
    /// `host:port` the NAS dials; empty when not configured.
    pub endpoint: &'a str,
    pub keepalive_seconds: u16,
    /// The RADIUS secret, when the caller has just given it.
    pub radius_secret: Option<&'a str>,
    pub auth_port: u16,
    pub acct_port: u16,
    pub coa_port: u16,
}

impl NasConfig<'_> {
    fn host_bits(&self) -> u8 {
        if self.tunnel_address.is_ipv4() {
            32
        } else {
            128
        }
    }

    /// (host, port) of the endpoint; placeholders when unset.
    fn endpoint_parts(&self) -> (String, String) {
        match self.endpoint.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => (
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port.to_string(),
            ),
            _ => ("<edge-public-address>".into(), "51820".into()),
        }
    }

    fn private_key_text(&self) -> &str {
        self.private_key.unwrap_or("<the NAS's private key>")
    }
}

/// RouterOS v7 commands: the WireGuard interface and peer, the tunnel address, the route to
/// the edge, and the RADIUS client pointing at the edge through the tunnel (with incoming
/// CoA/Disconnect accepted).
pub fn routeros(c: &NasConfig<'_>) -> String {
    let (host, port) = c.endpoint_parts();
    let iface = "wg-dotmac-edge";
    let bits = c.host_bits();
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(s, "# dotmac-edge: NAS {} over WireGuard", c.nas_name);
    let _ = writeln!(
        s,
        "/interface wireguard add name={iface} listen-port=13231 private-key=\"{}\" comment=\"dotmac-edge\"",
        c.private_key_text()
    );
    let _ = writeln!(
        s,
        "/interface wireguard peers add interface={iface} public-key=\"{}\" endpoint-address={host} endpoint-port={port} allowed-address={}/{bits} persistent-keepalive={}s comment=\"dotmac-edge\"",
        c.edge_public_key, c.edge_address, c.keepalive_seconds
    );
    let _ = writeln!(
        s,
        "/ip address add address={}/{bits} interface={iface} comment=\"dotmac-edge tunnel\"",
        c.tunnel_address
    );
    let _ = writeln!(
        s,
        "/ip route add dst-address={}/{bits} gateway={iface} comment=\"dotmac-edge\"",
        c.edge_address
    );
    let _ = writeln!(
        s,
        "/radius add address={} secret=\"{}\" service=ppp,hotspot,dhcp src-address={} authentication-port={} accounting-port={} timeout=3s require-message-auth=yes comment=\"dotmac-edge\"",
        c.edge_address,
        c.radius_secret.unwrap_or("<RADIUS secret>"),
        c.tunnel_address,
        c.auth_port,
        c.acct_port
    );
    let _ = writeln!(s, "/radius incoming set accept=yes port={}", c.coa_port);
    s
}

/// A wg-quick(8) file for a Linux NAS (accel-ppp and the like).
pub fn wg_quick(c: &NasConfig<'_>) -> String {
    let (host, port) = c.endpoint_parts();
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let bits = c.host_bits();
    let mut s = String::new();
    let _ = writeln!(s, "# dotmac-edge: NAS {}", c.nas_name);
    let _ = writeln!(
        s,
        "# RADIUS server {} (auth {}, accounting {}); Disconnect/CoA arrive on {}:{}",
        c.edge_address, c.auth_port, c.acct_port, c.tunnel_address, c.coa_port
    );
    let _ = writeln!(s, "[Interface]");
    let _ = writeln!(s, "PrivateKey = {}", c.private_key_text());
    let _ = writeln!(s, "Address = {}/{bits}", c.tunnel_address);
    let _ = writeln!(s);
    let _ = writeln!(s, "[Peer]");
    let _ = writeln!(s, "PublicKey = {}", c.edge_public_key);
    let _ = writeln!(s, "Endpoint = {host}:{port}");
    let _ = writeln!(s, "AllowedIPs = {}/{bits}", c.edge_address);
    let _ = writeln!(s, "PersistentKeepalive = {}", c.keepalive_seconds);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(private_key: Option<&'static str>, endpoint: &'static str) -> NasConfig<'static> {
        NasConfig {
            nas_name: "bng-1",
            tunnel_address: "10.255.0.2".parse().unwrap(),
            private_key,
            edge_public_key: "EDGEPUB=",
            edge_address: "10.255.0.1".parse().unwrap(),
            endpoint,
            keepalive_seconds: 25,
            radius_secret: None,
            auth_port: 1812,
            acct_port: 1813,
            coa_port: 3799,
        }
    }

    #[test]
    fn wg_quick_file() {
        let text = wg_quick(&config(Some("NASPRIV="), "edge.example.net:51820"));
        assert!(text.contains("[Interface]\nPrivateKey = NASPRIV=\nAddress = 10.255.0.2/32\n"));
        assert!(text.contains(
            "[Peer]\nPublicKey = EDGEPUB=\nEndpoint = edge.example.net:51820\nAllowedIPs = 10.255.0.1/32\nPersistentKeepalive = 25\n"
        ));
    }

    #[test]
    fn placeholders_where_nothing_is_known() {
        let text = wg_quick(&config(None, ""));
        assert!(text.contains("PrivateKey = <the NAS's private key>"));
        assert!(text.contains("Endpoint = <edge-public-address>:51820"));
        let ros = routeros(&config(None, ""));
        assert!(ros.contains("secret=\"<RADIUS secret>\""));
    }

    #[test]
    fn routeros_commands() {
        let ros = routeros(&config(Some("NASPRIV="), "[2001:db8::1]:51821"));
        assert!(ros.contains("private-key=\"NASPRIV=\""));
        assert!(ros.contains("public-key=\"EDGEPUB=\" endpoint-address=2001:db8::1 endpoint-port=51821 allowed-address=10.255.0.1/32 persistent-keepalive=25s"));
        assert!(ros.contains("/ip address add address=10.255.0.2/32 interface=wg-dotmac-edge"));
        assert!(ros.contains("/radius add address=10.255.0.1 "));
        assert!(ros.contains("src-address=10.255.0.2"));
        assert!(ros.contains("/radius incoming set accept=yes port=3799"));
        let v6 = wg_quick(&config(None, "[2001:db8::1]:51821"));
        assert!(v6.contains("Endpoint = [2001:db8::1]:51821"));
    }
}
