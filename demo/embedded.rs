//! Run: `cargo run --example embedded`
//!
//! Embeds a server in a program that has its own work to do: the builder, `spawn` on a
//! background thread (ephemeral port), a small client talking to it, and a graceful
//! `stop` with a deadline issued from another thread of the program. Nothing is left
//! behind when it returns.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::servers::FtpServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let dir = std::env::temp_dir().join(format!("ftpdlib-embedded-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("hello.txt"), b"hello from an embedded server\n")?;

    let mut authorizer = DummyAuthorizer::new();
    authorizer.add_user("user", "12345", &dir, "elradfmwMT", None, None)?;
    let server = FtpServer::builder(authorizer)
        .configure(|c| c.timeout = Some(Duration::from_secs(60)))
        .spawn("127.0.0.1:0")?;
    let addr = server.local_addr();
    println!("serving {} on ftp://user:12345@{addr}/", dir.display());

    let text = fetch(addr, "hello.txt")?;
    print!("downloaded: {text}");

    // Any thread may stop it: here a thread of the host program asks for a graceful stop
    // (no new sessions, running transfers finish) with a five-second deadline.
    let stopper = std::thread::spawn(move || server.stop(Duration::from_secs(5)));
    stopper
        .join()
        .map_err(|_| "the stopping thread panicked")??;
    println!("stopped");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A minimal passive-mode download, to show the server answering.
fn fetch(addr: SocketAddr, name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let control = TcpStream::connect(addr)?;
    control.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(control.try_clone()?);
    let mut writer = control;
    let mut reply = move |line: Option<&str>| -> std::io::Result<String> {
        if let Some(line) = line {
            writer.write_all(format!("{line}\r\n").as_bytes())?;
        }
        let mut text = String::new();
        reader.read_line(&mut text)?;
        Ok(text)
    };
    reply(None)?; // 220
    reply(Some("USER user"))?;
    reply(Some("PASS 12345"))?;
    let epsv = reply(Some("EPSV"))?; // 229 Entering extended passive mode (|||port|).
    let port: u16 = epsv
        .split('|')
        .nth(3)
        .and_then(|p| p.parse().ok())
        .ok_or("bad EPSV reply")?;
    let mut data = TcpStream::connect((addr.ip(), port))?;
    reply(Some(&format!("RETR {name}")))?; // 150
    let mut text = String::new();
    data.read_to_string(&mut text)?;
    reply(None)?; // 226
    reply(Some("QUIT"))?;
    Ok(text)
}
