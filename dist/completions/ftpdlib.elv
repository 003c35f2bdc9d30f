
use builtin;
use str;

set edit:completion:arg-completer[ftpdlib] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'ftpdlib'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'ftpdlib'= {
            cand -i 'specify the interface to run on (default: all interfaces)'
            cand --interface 'specify the interface to run on (default: all interfaces)'
            cand -p 'specify port number to run on (default: 2121)'
            cand --port 'specify port number to run on (default: 2121)'
            cand -d 'specify the directory to share (default: current directory)'
            cand --directory 'specify the directory to share (default: current directory)'
            cand -n 'the NAT address to use for passive connections'
            cand --nat-address 'the NAT address to use for passive connections'
            cand -r 'the range of TCP ports to use for passive connections (e.g. -r 8000-9000)'
            cand --range 'the range of TCP ports to use for passive connections (e.g. -r 8000-9000)'
            cand -u 'specify username to login with (anonymous login will be disabled and password required if supplied)'
            cand --username 'specify username to login with (anonymous login will be disabled and password required if supplied)'
            cand -P 'specify a password to login with (username required to be useful)'
            cand --password 'specify a password to login with (username required to be useful)'
            cand --concurrency 'the FTP server concurrency model to use, either ''async'' (default), ''multi-thread'', ''multi-proc'', ''pre-fork'' or ''multi-loop'''
            cand --workers 'worker processes (pre-fork) or loop threads (multi-loop); 0 = one per CPU'
            cand --perm 'exactly these permission letters (e.g. elr, elradfmwMT) for the -u user or anonymous, or for every system user with --unix-users; overrides -w'
            cand --quota-bytes 'the most bytes the -u user''s files may hold (K, M, G suffixes); an upload past it is refused with 552 and removed'
            cand --quota-files 'the most files the -u user''s home may hold (K, M, G suffixes)'
            cand --users-file 'serve the virtual users of this file: one name:hash:home:perms per line, the hash made by --hash-password'
            cand --config 'read the options (long names as keys) and [[users]] from this TOML file; the command line and FTPDLIB_* variables win over it'
            cand --keyfile 'the TLS key file (default: the certificate file)'
            cand --certfile 'the TLS certificate file'
            cand --tls-client-ca 'mutual TLS: clients must present a certificate signed by a CA of this PEM file, else the handshake fails'
            cand --timeout 'connection timeout (default: 300 seconds; 0 = none)'
            cand --data-timeout 'idle timeout of data connections (default: --timeout; 0 = none)'
            cand --passive-timeout 'how long a passive listener waits for the client to connect (default: 30)'
            cand --active-timeout 'how long an active (PORT) connect may take (default: 30)'
            cand --banner 'the message sent when client connects (default: ''ftpdlib 0.1.0 ready.'')'
            cand --encoding 'the encoding used for client / server communication: utf-8 (default), latin-1, or any ASCII-based encoding of the WHATWG Encoding Standard (windows-1251, shift_jis, gbk, euc-kr, koi8-r ...)'
            cand --nat-address-for 'the address announced in PASV replies to clients of a network (the first network that holds the client wins; others get -n), e.g. 192.168.0.0/16=192.168.1.10'
            cand --virtual-host 'virtual hosts (RFC 7151 HOST, or the TLS SNI name): each NAME''s users come from its users file, its certificate from CERTFILE'
            cand --max-cons 'max number of simultaneous connections (default: 512)'
            cand --max-cons-per-ip 'maximum number of connections from the same IP address (default: unlimited)'
            cand --max-login-attempts 'max number of failed authentications before disconnect (default: 3)'
            cand --ban-after 'ban an address after N failed logins within --ban-window: refused at connect (421) for --ban-time (default: 0, never)'
            cand --ban-window 'how far back failed logins count towards a ban (default: 600)'
            cand --ban-time 'how long a ban lasts (default: 3600)'
            cand --ban-allow 'addresses and networks never banned'
            cand --backlog 'the listen backlog: connections the kernel queues before they are accepted (default: 1024)'
            cand --auth-failed-timeout 'delay before the reply to a failed login (default: 3)'
            cand --auth-workers 'threads that check passwords off the event loop (default: 0, on the loop)'
            cand --log-prefix 'the prefix of a session''s log lines, with %(remote_ip)s, %(remote_port)s and %(username)s (default: ''%(remote_ip)s:%(remote_port)s-[%(username)s]'')'
            cand --log-file 'append the log to this file instead of standard error; SIGUSR1 reopens it (logrotate)'
            cand --log-format 'the log lines'' format: ''text'' (pyftpdlib''s, default) or ''json'' (one object per line with time, level and message)'
            cand --xferlog 'append a line per file transfer to this file, in wu-ftpd''s xferlog format; SIGUSR1 reopens it'
            cand --syslog-socket 'the syslog daemon''s datagram socket (default: /dev/log); implies --syslog'
            cand --read-limit 'limit each upload to this many bytes per second (K, M, G suffixes; 0 = no limit)'
            cand --write-limit 'limit each download to this many bytes per second (K, M, G suffixes; 0 = no limit)'
            cand --server-read-limit 'limit all uploads of the server together to this many bytes per second, shared by every session and process (K, M, G suffixes; 0 = no limit)'
            cand --server-write-limit 'limit all downloads of the server together to this many bytes per second (K, M, G suffixes; 0 = no limit)'
            cand --user-read-limit 'limit all uploads of each user together (every session of that user) to this many bytes per second (K, M, G suffixes; 0 = no limit)'
            cand --user-write-limit 'limit all downloads of each user together to this many bytes per second (K, M, G suffixes; 0 = no limit)'
            cand --proxy-protocol-from 'expect a PROXY protocol header (v1 or v2) on every connection, and accept connections only from these proxies (e.g. 127.0.0.1 or 10.0.0.0/8)'
            cand --metrics 'serve Prometheus metrics on http://ADDR/metrics (and /healthz), e.g. 127.0.0.1:9100 or :9100 for every interface'
            cand --completions 'print the completion script for SHELL (bash, zsh, fish, elvish or powershell) and exit'
            cand -h 'show this help message and exit'
            cand --help 'show this help message and exit'
            cand --version 'print the version and exit'
            cand -w 'grants write access for logged in user (default: read-only)'
            cand --write 'grants write access for logged in user (default: read-only)'
            cand -D 'enable DEBUG logging level'
            cand --debug 'enable DEBUG logging level'
            cand --unix-users 'serve the system''s accounts (needs root): passwords from the shadow database, sessions start in the user''s home and act as that user'
            cand --tls 'whether to enable FTPS (FTP over TLS); requires --certfile'
            cand --tls-control-required 'impose TLS for the control connection (before login)'
            cand --tls-data-required 'impose TLS for the data connection'
            cand --tls-implicit 'implicit FTPS: TLS from the first byte (the port-990 convention), PROT P implied'
            cand --tls-require-reuse 'refuse TLS data connections that do not resume the control connection''s TLS session (vsftpd''s require_ssl_reuse)'
            cand --tls-client-cert-login 'with --tls-client-ca: a certificate whose common name (or e-mail / DNS name) is a user''s name logs that user in without a password (232)'
            cand --permit-foreign-addresses 'allow data connections from an IP address different than the control connection'
            cand --permit-privileged-ports 'allow data connections (PORT) over privileged TCP ports'
            cand --use-localtime 'display directory listings with the time in your local time zone (default: use GMT)'
            cand --disable-sendfile 'disable sendfile(2) and splice(2), used for faster file transfers'
            cand --list-all 'LIST shows dot-files without -a, as pyftpdlib does (default: only with -a)'
            cand --passive-only 'offer passive data connections only: PORT and EPRT are answered 502'
            cand --active-only 'offer active data connections only: PASV and EPSV are answered 502'
            cand --atomic-uploads 'uploads go to a hidden temporary, renamed over the target once complete; APPE and REST+STOR are refused'
            cand --fsync-uploads 'the 226 of an upload is sent once the file (and a new name) is on disk (fdatasync, fsync of the directory)'
            cand --site-utime 'enable SITE UTIME (set a file''s modification time; needs the T permission)'
            cand --site-symlink 'enable SITE SYMLINK (relative links inside the user''s root; needs the w permission)'
            cand --syslog 'send the log to syslog (/dev/log, facility daemon) instead of standard error'
            cand --man 'print the manual page (roff, for man -l -) and exit'
            cand --hash-password 'read a password from stdin, print its crypt(3) hash (for --users-file) and exit'
        }
    ]
    $completions[$command]
}
