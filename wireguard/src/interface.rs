//! The edge's WireGuard interface: the kernel module where it is loaded, a userspace
//! implementation (boringtun, wireguard-go) through its UAPI socket otherwise.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;
use wireguard_control::{Backend, Device, DeviceUpdate, InterfaceName, PeerInfo};

use crate::keys::PrivateKey;
use crate::{link, WgError};

/// Which implementation carries the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// The kernel module when it is loaded, userspace otherwise.
    Auto,
    Kernel,
    Userspace,
}

impl BackendChoice {
    pub fn parse(s: &str) -> Option<BackendChoice> {
        match s {
            "auto" => Some(BackendChoice::Auto),
            "kernel" => Some(BackendChoice::Kernel),
            "userspace" => Some(BackendChoice::Userspace),
            _ => None,
        }
    }

    pub(crate) fn resolve(self) -> Backend {
        match self {
            BackendChoice::Kernel => Backend::Kernel,
            BackendChoice::Userspace => Backend::Userspace,
            BackendChoice::Auto if std::path::Path::new("/sys/module/wireguard").exists() => {
                Backend::Kernel
            }
            BackendChoice::Auto => Backend::Userspace,
        }
    }
}

/// The interface's settings, validated (the private key comes apart: it is read from its
/// file only by the process that opens the interface).
#[derive(Debug, Clone)]
pub struct Settings {
    pub interface: String,
    pub listen_port: u16,
    /// The management prefix: NAS tunnel addresses come from it, and it is routed into the
    /// interface.
    pub prefix: IpNetwork,
    /// The edge's own address in the prefix (the NAS's RADIUS server address).
    pub edge_address: IpAddr,
    pub backend: BackendChoice,
    /// Started with the interface name appended when the userspace socket is missing, e.g.
    /// `boringtun-cli --foreground --disable-drop-privileges`. Empty: the implementation is
    /// started by someone else (a sidecar).
    pub userspace_command: Vec<String>,
    /// Peers are compared with the NAS table this often even when nothing announced a change.
    pub resync_every: Duration,
    /// Peer status (handshakes, counters) is read into the metrics this often.
    pub status_every: Duration,
}

/// An interface this process configures. A userspace implementation it started is stopped
/// when this is dropped.
pub struct Interface {
    name: InterfaceName,
    backend: Backend,
    child: Mutex<Option<Child>>,
}

/// The peers of interface `name`. Blocking.
pub(crate) fn read_peers(name: &str, backend: Backend) -> Result<Vec<PeerInfo>, WgError> {
    let what = || format!("reading {name}");
    if backend == Backend::Userspace {
        return crate::uapi::peers(&socket_path(name)).map_err(WgError::io(what()));
    }
    let iface: InterfaceName = name
        .parse()
        .map_err(|e| WgError::Config(format!("wireguard.interface: {e}")))?;
    Device::get(&iface, backend)
        .map(|d| d.peers)
        .map_err(WgError::io(what()))
}

fn socket_path(name: &str) -> PathBuf {
    let base = if std::path::Path::new("/var/run/wireguard").exists() {
        "/var/run/wireguard"
    } else {
        "/run/wireguard"
    };
    PathBuf::from(base).join(format!("{name}.sock"))
}

fn socket_answers(name: &str) -> bool {
    std::os::unix::net::UnixStream::connect(socket_path(name)).is_ok()
}

impl Interface {
    /// Brings the interface up with the edge's key, port and address. Blocking.
    pub fn open(s: &Settings, key: &PrivateKey) -> Result<Interface, WgError> {
        let name: InterfaceName = s
            .interface
            .parse()
            .map_err(|e| WgError::Config(format!("wireguard.interface: {e}")))?;
        let backend = s.backend.resolve();
        let mut child = None;
        if backend == Backend::Userspace && !socket_answers(&s.interface) {
            child = Some(start_userspace(s)?);
        }
        let iface = Interface {
            name,
            backend,
            child: Mutex::new(child),
        };
        DeviceUpdate::new()
            .set_private_key(key.key().clone())
            .set_listen_port(s.listen_port)
            .apply(&iface.name, backend)
            .map_err(WgError::io(format!("configuring {}", s.interface)))?;
        let index = link::index_of(&s.interface)
            .map_err(WgError::io(format!("finding {}", s.interface)))?;
        link::set_address(index, s.edge_address, s.prefix.prefix()).map_err(WgError::io(
            format!("setting the address of {}", s.interface),
        ))?;
        link::set_up(index).map_err(WgError::io(format!("setting {} up", s.interface)))?;
        Ok(iface)
    }

    pub fn name(&self) -> String {
        self.name.to_string()
    }

    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Userspace => "userspace",
            _ => "kernel",
        }
    }

    /// The interface's peers now. Blocking.
    pub fn peers(&self) -> Result<Vec<PeerInfo>, WgError> {
        read_peers(&self.name.to_string(), self.backend)
    }

    /// Applies a peer update. Blocking.
    pub(crate) fn apply(&self, update: DeviceUpdate) -> Result<(), WgError> {
        update
            .apply(&self.name, self.backend)
            .map_err(WgError::io(format!("updating the peers of {}", self.name)))
    }
}

impl Drop for Interface {
    fn drop(&mut self) {
        let Ok(mut slot) = self.child.lock() else {
            return;
        };
        if let Some(mut child) = slot.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the configured userspace implementation and waits for its UAPI socket.
fn start_userspace(s: &Settings) -> Result<Child, WgError> {
    let Some((program, args)) = s.userspace_command.split_first() else {
        return Err(WgError::Config(format!(
            "no WireGuard kernel module and no userspace interface at {}: start one \
             (boringtun-cli, wireguard-go) or set wireguard.userspace_command",
            socket_path(&s.interface).display()
        )));
    };
    let mut child = Command::new(program)
        .args(args)
        .arg(&s.interface)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(WgError::io(format!("starting {program}")))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if socket_answers(&s.interface) {
            tracing::info!(program = %program, interface = %s.interface, "userspace WireGuard started");
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(WgError::Config(format!(
                "{program} exited ({status}) before opening {}",
                socket_path(&s.interface).display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(WgError::Config(format!(
        "{program} did not open {} within 10 s",
        socket_path(&s.interface).display()
    )))
}
