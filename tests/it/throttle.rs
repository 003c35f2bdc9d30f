//! Throttling (pyftpdlib's ThrottledDTPHandler): read_limit / write_limit in bytes per
//! second, by sleeping the data channel on a loop timer. Only lower bounds are strict
//! (a throttle can never make a transfer faster); the upper bounds are generous.

use std::time::{Duration, Instant};

use crate::util::{random_bytes, TestServer};

/// Checks that moving `size` bytes at `rate` bytes per second took `elapsed`.
fn check_rate(what: &str, elapsed: Duration, size: usize, rate: u64) {
    // The first burst (rate / 20) is free: the floor is 90 % of the nominal time.
    let nominal = size as f64 / rate as f64;
    let floor = Duration::from_secs_f64(0.9 * nominal);
    assert!(
        elapsed >= floor,
        "{what} took {elapsed:?}: faster than the limit"
    );
    assert!(
        elapsed <= Duration::from_secs_f64(4.0 * nominal),
        "{what} took {elapsed:?}: far slower than the limit"
    );
}

/// A download and an upload of `size` bytes at once, each limited to `rate`.
fn transfer_both_ways(rate: u64, size: usize) {
    let _heavy = crate::util::heavy();
    let srv = TestServer::with(
        |c| {
            c.write_limit = rate;
            c.read_limit = rate;
        },
        |_| {},
    );
    let data = random_bytes(size, 11);
    std::fs::write(srv.root().join("down.bin"), &data).expect("write");
    let addr = srv.addr;
    let up = data.clone();
    let uploader = std::thread::spawn(move || {
        let mut c = crate::util::Client::connect(addr);
        c.login("user", "12345");
        let started = Instant::now();
        c.stor("up.bin", &up);
        started.elapsed()
    });
    let mut c = srv.login();
    let started = Instant::now();
    assert_eq!(c.retr("down.bin"), data);
    check_rate("the download", started.elapsed(), size, rate);
    check_rate("the upload", uploader.join().expect("uploader"), size, rate);
    assert_eq!(
        std::fs::read(srv.root().join("up.bin")).expect("uploaded"),
        data
    );
    // Other commands are not throttled meanwhile.
    c.expect("NOOP", 200);
}

#[test]
fn downloads_and_uploads_keep_to_their_limits() {
    transfer_both_ways(1 << 20, 3 << 20);
}

#[test]
fn ten_mib_a_second_is_kept_too() {
    transfer_both_ways(10 << 20, 30 << 20);
}

/// `n` downloads of `file` at once, each in its own session of `users[i % len]`; returns
/// how long all of them together took, after checking each got the whole file.
fn concurrent_downloads(
    addr: std::net::SocketAddr,
    users: &[&str],
    n: usize,
    data: &[u8],
) -> Duration {
    let started = Instant::now();
    let downloads: Vec<_> = (0..n)
        .map(|i| {
            let user = users[i % users.len()].to_owned();
            std::thread::spawn(move || {
                let mut c = crate::util::Client::connect(addr);
                let pass = if user == "anonymous" {
                    "guest@"
                } else {
                    "12345"
                };
                c.login(&user, pass);
                c.expect("TYPE I", 200);
                let data = c.pasv();
                c.download("RETR shared.bin", data)
            })
        })
        .collect();
    for d in downloads {
        assert_eq!(d.join().expect("download").as_slice(), data);
    }
    started.elapsed()
}

#[test]
fn a_user_cap_is_shared_by_all_of_that_users_sessions() {
    let _heavy = crate::util::heavy();
    let rate = 1 << 20;
    let srv = TestServer::with(|c| c.user_write_limit = rate, |_| {});
    let data = random_bytes(3 << 19, 12);
    std::fs::write(srv.root().join("shared.bin"), &data).expect("write");
    // Two sessions of one user, 1.5 MiB each: 3 MiB at the user's 1 MiB/s.
    let elapsed = concurrent_downloads(srv.addr, &["user"], 2, &data);
    check_rate("two downloads of one user", elapsed, 2 * data.len(), rate);
}

#[test]
fn a_server_cap_is_shared_by_all_users() {
    let _heavy = crate::util::heavy();
    let rate = 1 << 20;
    let srv = TestServer::with(|c| c.server_write_limit = rate, |_| {});
    let data = random_bytes(3 << 19, 13);
    std::fs::write(srv.root().join("shared.bin"), &data).expect("write");
    let elapsed = concurrent_downloads(srv.addr, &["user", "anonymous"], 2, &data);
    check_rate("downloads of two users", elapsed, 2 * data.len(), rate);
}

#[test]
fn the_authorizer_caps_one_users_uploads_and_leaves_the_others() {
    let _heavy = crate::util::heavy();
    let rate = 1 << 20;
    let srv = TestServer::with_authorizer(
        |mut auth| {
            auth.set_bandwidth(
                "user",
                ftpdlib::authorizers::UserBandwidth {
                    read_limit: rate,
                    write_limit: 0,
                },
            );
            Box::new(auth)
        },
        |_| {},
        |_| {},
        |b| b,
    );
    let data = random_bytes(3 << 19, 14);
    let addr = srv.addr;
    let started = Instant::now();
    let uploads: Vec<_> = (0..2)
        .map(|i| {
            let data = data.clone();
            std::thread::spawn(move || {
                let mut c = crate::util::Client::connect(addr);
                c.login("user", "12345");
                c.stor(&format!("up{i}.bin"), &data);
            })
        })
        .collect();
    for u in uploads {
        u.join().expect("upload");
    }
    check_rate(
        "two uploads of one user",
        started.elapsed(),
        2 * data.len(),
        rate,
    );
    for i in 0..2 {
        assert_eq!(
            std::fs::read(srv.root().join(format!("up{i}.bin"))).expect("uploaded"),
            data
        );
    }
}

#[test]
fn the_per_transfer_limit_still_applies_under_a_looser_user_cap() {
    let _heavy = crate::util::heavy();
    let rate = 1 << 20;
    let srv = TestServer::with(
        |c| {
            c.write_limit = rate;
            c.user_write_limit = 8 << 20;
            c.server_write_limit = 16 << 20;
        },
        |_| {},
    );
    let data = random_bytes(2 << 20, 15);
    std::fs::write(srv.root().join("shared.bin"), &data).expect("write");
    let elapsed = concurrent_downloads(srv.addr, &["user"], 1, &data);
    check_rate("a download under both", elapsed, data.len(), rate);
}

#[test]
fn a_server_cap_holds_across_the_processes_of_the_multi_proc_model() {
    let _heavy = crate::util::heavy();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("a UTF-8 temp path");
    let data = random_bytes(3 << 19, 16);
    std::fs::write(tmp.path().join("shared.bin"), &data).expect("write");
    let srv = crate::util::BinServer::start(&[
        "-u",
        "user",
        "-P",
        "12345",
        "-d",
        dir,
        "--concurrency",
        "multi-proc",
        "--server-write-limit",
        "1M",
    ]);
    // Each session runs in a process of its own: the cap lives in shared memory.
    let elapsed = concurrent_downloads(srv.addr, &["user"], 2, &data);
    check_rate(
        "downloads in two processes",
        elapsed,
        2 * data.len(),
        1 << 20,
    );
}

/// CPU time (user + system) of process `pid` so far, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server's stat");
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// Raises this process's open-files limit towards `want`; returns the limit.
fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit, which `lim` is.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur < want {
        lim.rlim_cur = want.min(lim.rlim_max);
        // SAFETY: setrlimit reads one rlimit, which `lim` is.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
    lim.rlim_cur
}

#[test]
fn a_thousand_sessions_under_one_server_cap_do_not_make_the_server_spin() {
    let _heavy = crate::util::heavy();
    let sessions = (((raise_nofile(4096) as usize).saturating_sub(64)) / 2).min(1000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("a UTF-8 temp path");
    std::fs::write(tmp.path().join("big.bin"), random_bytes(1 << 20, 17)).expect("write");
    let rate: u64 = 1 << 20;
    let srv = crate::util::BinServer::start(&[
        "-u",
        "user",
        "-P",
        "12345",
        "-d",
        dir,
        "--max-cons",
        "4000",
        "--server-write-limit",
        "1M",
    ]);
    let mut open = Vec::with_capacity(sessions);
    let mut first_retr = None;
    for _ in 0..sessions {
        let mut c = crate::util::Client::connect(srv.addr);
        c.login("user", "12345");
        c.expect("TYPE I", 200);
        let data = c.pasv();
        first_retr.get_or_insert_with(Instant::now);
        let (code, _) = c.cmd("RETR big.bin");
        assert!(code == 125 || code == 150, "RETR got {code}");
        open.push((c, data));
    }
    // Every transfer is waiting for its turn; far fewer bytes than the socket buffers
    // hold move meanwhile, so the cap alone paces them.
    let cpu_before = cpu_time(srv.pid());
    let window_start = Instant::now();
    // The measurement is of time itself: a window in which only the timers run.
    std::thread::sleep(Duration::from_secs(3));
    let window = window_start.elapsed();
    let cpu = cpu_time(srv.pid()) - cpu_before;
    assert!(
        cpu < window / 3,
        "{sessions} throttled sessions used {cpu:?} of CPU in {window:?}"
    );
    // And the bytes that moved, over all of them, kept to the cap.
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    for (_, data) in &mut open {
        data.set_nonblocking(true).expect("non-blocking");
        while let Ok(n @ 1..) = std::io::Read::read(data, &mut buf) {
            total += n as u64;
        }
    }
    let since_first = first_retr.map_or(window, |t| t.elapsed()).as_secs_f64();
    // At most the cap's rate since the first transfer started, plus a chunk (1/20 s).
    assert!(
        (total as f64) <= 1.1 * rate as f64 * (since_first + 0.05),
        "{total} B moved in {since_first:.2} s"
    );
    assert!(
        total as f64 >= 0.9 * rate as f64 * window.as_secs_f64(),
        "{total} B moved in {since_first:.2} s: the cap starves them"
    );
}

#[test]
fn a_users_cap_from_the_config_file_holds_over_that_users_sessions() {
    let _heavy = crate::util::heavy();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("ann");
    std::fs::create_dir(&home).expect("home");
    let data = random_bytes(3 << 19, 18);
    std::fs::write(home.join("shared.bin"), &data).expect("write");
    let config = tmp.path().join("ftpdlib.toml");
    let text = format!(
        "[[users]]\nname = \"user\"\npassword = \"12345\"\nhome = \"{}\"\nwrite-limit = \"1M\"\n",
        home.display()
    );
    std::fs::write(&config, text).expect("write the config file");
    let srv =
        crate::util::BinServer::start(&["--config", config.to_str().expect("a UTF-8 temp path")]);
    let elapsed = concurrent_downloads(srv.addr, &["user"], 2, &data);
    check_rate(
        "two downloads of a capped user",
        elapsed,
        2 * data.len(),
        1 << 20,
    );
}

#[test]
fn waiting_for_a_turn_in_a_cap_is_not_a_data_timeout() {
    let _heavy = crate::util::heavy();
    // 4 KiB/s in 4 KiB chunks: the fourth download waits 3 s for its only chunk, three
    // times the data timeout.
    let srv = TestServer::with(
        |c| {
            c.server_write_limit = 4096;
            c.data_timeout = Some(Duration::from_secs(1));
        },
        |_| {},
    );
    let data = random_bytes(4096, 19);
    std::fs::write(srv.root().join("shared.bin"), &data).expect("write");
    let elapsed = concurrent_downloads(srv.addr, &["user"], 4, &data);
    // The first chunk goes at once, the others a second apart.
    assert!(elapsed >= Duration::from_millis(2700), "{elapsed:?}");
}

#[test]
fn a_reload_sets_a_server_cap_for_the_transfers_after_it() {
    let _heavy = crate::util::heavy();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let data = random_bytes(3 << 19, 20);
    std::fs::write(home.join("shared.bin"), &data).expect("write");
    let config = tmp.path().join("ftpdlib.toml");
    let write_config = |extra: &str| {
        let text = format!(
            "username = \"user\"\npassword = \"12345\"\ndirectory = \"{}\"\n{extra}",
            home.display()
        );
        std::fs::write(&config, text).expect("write the config file");
    };
    write_config("");
    let srv =
        crate::util::BinServer::start(&["--config", config.to_str().expect("a UTF-8 temp path")]);
    // Uncapped at first: loopback moves 3 MiB far faster than in 2.7 s.
    let uncapped = concurrent_downloads(srv.addr, &["user"], 2, &data);
    assert!(uncapped < Duration::from_millis(2700), "{uncapped:?}");
    write_config("server-write-limit = \"1M\"\n");
    srv.signal("HUP");
    srv.wait_log("reload done", 1);
    let elapsed = concurrent_downloads(srv.addr, &["user"], 2, &data);
    check_rate(
        "two downloads after the reload",
        elapsed,
        2 * data.len(),
        1 << 20,
    );
}
