//! Setting up the data connection: PASV, EPSV (RFC 2428), PORT, EPRT (RFC 2428), with
//! RFC 2577's checks on the address a client names.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ioloop::Ctx;

use crate::error::fs_error_reply;
use crate::handlers::control::{DataChan, FtpHandler, Wait};
use crate::handlers::dtp::{same_ip, DtpHandler, PassiveDtp};
use crate::handlers::Msg;
use crate::proto::{
    epsv_reply, parse_eprt_on, parse_epsv_on, parse_port, pasv_reply, protocol_not_supported,
    ControlFamily, EpsvArg, Reply,
};

impl FtpHandler {
    /// The 502 for a kind of data connection the server does not offer.
    fn data_mode_refused(&self, passive: bool) -> Option<Reply> {
        let offered = self.shared.config.data_connections;
        if passive && !offered.passive() {
            Some(Reply::new(
                502,
                "Passive mode is disabled on this server; use PORT or EPRT.",
            ))
        } else if !passive && !offered.active() {
            Some(Reply::new(
                502,
                "Active mode is disabled on this server; use PASV or EPSV.",
            ))
        } else {
            None
        }
    }

    pub(super) fn ftp_pasv(&mut self, cx: &mut Ctx<'_, Msg>, extended: bool) {
        if let Some(refused) = self.data_mode_refused(true) {
            return self.respond(refused);
        }
        if !extended && self.epsv_all {
            return self.respond(Reply::new(501, "PASV not allowed after EPSV ALL."));
        }
        let announced_ip = if extended {
            None
        } else {
            match self.pasv_ipv4() {
                Some(ip) => Some(ip),
                None => {
                    return self.respond(Reply::new(
                        425,
                        "Can't use PASV on an IPv6 connection; use EPSV.",
                    ))
                }
            }
        };
        self.drop_data(cx);
        let listener = match self.bind_passive() {
            Ok(l) => l,
            Err(e) => {
                log::warn!("{} can't open a passive listener: {e}", self.prefix());
                return self.respond(Reply::new(425, "Can't open data connection."));
            }
        };
        let port = match listener.local_addr() {
            Ok(a) => a.port(),
            Err(e) => return self.respond(fs_error_reply(&e)),
        };
        let dtp = PassiveDtp::new(
            ioloop::mio::net::TcpListener::from_std(listener),
            cx.me(),
            self.remote.ip(),
            Arc::clone(&self.shared),
            self.data_tls(),
        );
        match cx.spawn(Box::new(dtp)) {
            Ok(h) => {
                self.data = DataChan::Passive {
                    listener: h,
                    queued: None,
                }
            }
            Err(e) => {
                log::warn!("{} can't register a passive listener: {e}", self.prefix());
                return self.respond(Reply::new(425, "Can't open data connection."));
            }
        }
        match announced_ip {
            Some(ip) => self.respond(pasv_reply(ip, port)),
            None => self.respond(epsv_reply(port)),
        }
    }

    /// The IPv4 address to announce in a 227 reply: the masquerade address for this local
    /// address, else the global one, else the local address itself.
    fn pasv_ipv4(&self) -> Option<std::net::Ipv4Addr> {
        let local = self.local().ip().to_canonical();
        let cfg = &self.shared.config;
        let client = self.remote.ip().to_canonical();
        let ip = cfg
            .masquerade_by_network
            .iter()
            .find(|(net, _)| net.contains(client))
            .map(|(_, ip)| *ip)
            .or_else(|| cfg.masquerade_address_map.get(&local).copied())
            .or(cfg.masquerade_address)
            .unwrap_or(local);
        match ip.to_canonical() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        }
    }

    /// Listens on the control connection's local address, on a port of the configured
    /// range when there is one (random order, first that binds), else any port.
    fn bind_passive(&self) -> std::io::Result<std::net::TcpListener> {
        let ip = self.local().ip();
        if let Some(range) = &self.shared.config.passive_ports {
            let ports: Vec<u16> = range.clone().collect();
            let n = ports.len();
            if n > 0 {
                let start = random_index(n);
                for i in 0..n {
                    let port = ports[(start + i) % n];
                    if let Ok(l) = crate::net::listen(SocketAddr::new(ip, port), 1) {
                        return Ok(l);
                    }
                }
            }
            log::warn!(
                "Can't find a valid passive port in the configured range. \
                 A random kernel-assigned port will be used."
            );
        }
        crate::net::listen(SocketAddr::new(ip, 0), 1)
    }

    pub(super) fn ftp_epsv(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str) {
        if let Some(refused) = self.data_mode_refused(true) {
            return self.respond(refused);
        }
        let arg = (!arg.is_empty()).then_some(arg);
        match parse_epsv_on(arg, ControlFamily::of(self.local())) {
            Ok(EpsvArg::All) => {
                self.epsv_all = true;
                self.respond(Reply::new(
                    200,
                    "Other commands other than EPSV are now disabled.",
                ));
            }
            Ok(_) => self.ftp_pasv(cx, true),
            Err(reply) => self.respond(reply),
        }
    }

    pub(super) fn ftp_port(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str) {
        if let Some(refused) = self.data_mode_refused(false) {
            return self.respond(refused);
        }
        if self.epsv_all {
            return self.respond(Reply::new(501, "PORT not allowed after EPSV ALL."));
        }
        match parse_port(arg) {
            Ok(addr) => self.connect_active(cx, SocketAddr::V4(addr)),
            Err(reply) => self.respond(reply),
        }
    }

    pub(super) fn ftp_eprt(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str) {
        if let Some(refused) = self.data_mode_refused(false) {
            return self.respond(refused);
        }
        if self.epsv_all {
            return self.respond(Reply::new(501, "EPRT not allowed after EPSV ALL."));
        }
        match parse_eprt_on(arg, ControlFamily::of(self.local())) {
            Ok(addr) => self.connect_active(cx, addr),
            Err(reply) => self.respond(reply),
        }
    }

    /// PORT / EPRT: RFC 2577 checks, then a connect from the control's local address. The
    /// 200 reply waits for the connect (input is paused meanwhile).
    fn connect_active(&mut self, cx: &mut Ctx<'_, Msg>, addr: SocketAddr) {
        let cfg = &self.shared.config;
        if !cfg.permit_foreign_addresses && !same_ip(addr.ip(), self.remote.ip()) {
            log::warn!(
                "{} Rejected data connection to foreign address {}:{}.",
                self.prefix(),
                addr.ip(),
                addr.port()
            );
            return self.respond(Reply::new(
                501,
                format!(
                    "Rejected data connection to foreign address {}:{}.",
                    addr.ip(),
                    addr.port()
                ),
            ));
        }
        if !cfg.permit_privileged_ports && addr.port() < 1024 {
            log::warn!(
                "{} PORT against the privileged port \"{}\" refused.",
                self.prefix(),
                addr.port()
            );
            return self.respond(Reply::new(
                501,
                format!(
                    "PORT against the privileged port \"{}\" refused.",
                    addr.port()
                ),
            ));
        }
        self.drop_data(cx);
        // Connect from the control connection's local address, in the target's family.
        let local = self.local().ip().to_canonical();
        let target = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        // EPRT |1| on an IPv6-only control address cannot connect: name the protocol
        // this connection serves (RFC 2428 §2).
        let bind_ip = match (local, target.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => local,
            (IpAddr::V4(_), IpAddr::V6(_)) => return self.respond(protocol_not_supported("1")),
            (IpAddr::V6(_), IpAddr::V4(_)) => return self.respond(protocol_not_supported("2")),
        };
        let data_tls = self.data_tls();
        let started =
            DtpHandler::connect(target, bind_ip, cx.me(), Arc::clone(&self.shared), data_tls)
                .and_then(|dtp| cx.spawn(Box::new(dtp)));
        match started {
            Ok(h) => {
                self.data = DataChan::Active(h);
                self.set_wait(Wait::ActiveConnect);
            }
            Err(e) => {
                log::debug!("{} connect to {target} failed: {e}", self.prefix());
                self.respond(Reply::new(425, "Can't connect to specified address."));
            }
        }
    }
}

impl FtpHandler {
    /// The 425 reply when a transfer cannot start now (see
    /// [`start_transfer`](FtpHandler::start_transfer)); checked before an upload opens
    /// its file, so a refused STOR never truncates or creates anything.
    pub(in crate::handlers) fn no_data_channel(&self) -> Option<Reply> {
        match self.data {
            DataChan::Passive { .. } | DataChan::Connected(_) => None,
            DataChan::None | DataChan::Active(_) => Some(
                self.tls_data_refusal()
                    .unwrap_or_else(|| Reply::new(425, "Use PORT or PASV first.")),
            ),
            DataChan::Transferring { .. } => {
                Some(Reply::new(425, "A transfer is already in progress."))
            }
        }
    }
}

/// A random index below `n` (a passive port's place in the range; the slight bias of a
/// remainder does not matter there). Without randomness from the OS, the first port.
fn random_index(n: usize) -> usize {
    getrandom::u64().map_or(0, |r| (r % n.max(1) as u64) as usize)
}
