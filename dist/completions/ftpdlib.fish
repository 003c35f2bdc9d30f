complete -c ftpdlib -s i -l interface -d 'specify the interface to run on (default: all interfaces)' -r
complete -c ftpdlib -s p -l port -d 'specify port number to run on (default: 2121)' -r
complete -c ftpdlib -s d -l directory -d 'specify the directory to share (default: current directory)' -r -F
complete -c ftpdlib -s n -l nat-address -d 'the NAT address to use for passive connections' -r
complete -c ftpdlib -s r -l range -d 'the range of TCP ports to use for passive connections (e.g. -r 8000-9000)' -r
complete -c ftpdlib -s u -l username -d 'specify username to login with (anonymous login will be disabled and password required if supplied)' -r
complete -c ftpdlib -s P -l password -d 'specify a password to login with (username required to be useful)' -r
complete -c ftpdlib -l concurrency -d 'the FTP server concurrency model to use, either \'async\' (default), \'multi-thread\', \'multi-proc\', \'pre-fork\' or \'multi-loop\'' -r
complete -c ftpdlib -l workers -d 'worker processes (pre-fork) or loop threads (multi-loop); 0 = one per CPU' -r
complete -c ftpdlib -l perm -d 'exactly these permission letters (e.g. elr, elradfmwMT) for the -u user or anonymous, or for every system user with --unix-users; overrides -w' -r
complete -c ftpdlib -l quota-bytes -d 'the most bytes the -u user\'s files may hold (K, M, G suffixes); an upload past it is refused with 552 and removed' -r
complete -c ftpdlib -l quota-files -d 'the most files the -u user\'s home may hold (K, M, G suffixes)' -r
complete -c ftpdlib -l users-file -d 'serve the virtual users of this file: one name:hash:home:perms per line, the hash made by --hash-password' -r -F
complete -c ftpdlib -l config -d 'read the options (long names as keys) and [[users]] from this TOML file; the command line and FTPDLIB_* variables win over it' -r -F
complete -c ftpdlib -l keyfile -d 'the TLS key file (default: the certificate file)' -r -F
complete -c ftpdlib -l certfile -d 'the TLS certificate file' -r -F
complete -c ftpdlib -l tls-client-ca -d 'mutual TLS: clients must present a certificate signed by a CA of this PEM file, else the handshake fails' -r -F
complete -c ftpdlib -l timeout -d 'connection timeout (default: 300 seconds; 0 = none)' -r
complete -c ftpdlib -l data-timeout -d 'idle timeout of data connections (default: --timeout; 0 = none)' -r
complete -c ftpdlib -l passive-timeout -d 'how long a passive listener waits for the client to connect (default: 30)' -r
complete -c ftpdlib -l active-timeout -d 'how long an active (PORT) connect may take (default: 30)' -r
complete -c ftpdlib -l banner -d 'the message sent when client connects (default: \'ftpdlib 0.1.0 ready.\')' -r
complete -c ftpdlib -l encoding -d 'the encoding used for client / server communication: utf-8 (default), latin-1, or any ASCII-based encoding of the WHATWG Encoding Standard (windows-1251, shift_jis, gbk, euc-kr, koi8-r ...)' -r
complete -c ftpdlib -l nat-address-for -d 'the address announced in PASV replies to clients of a network (the first network that holds the client wins; others get -n), e.g. 192.168.0.0/16=192.168.1.10' -r
complete -c ftpdlib -l virtual-host -d 'virtual hosts (RFC 7151 HOST, or the TLS SNI name): each NAME\'s users come from its users file, its certificate from CERTFILE' -r
complete -c ftpdlib -l max-cons -d 'max number of simultaneous connections (default: 512)' -r
complete -c ftpdlib -l max-cons-per-ip -d 'maximum number of connections from the same IP address (default: unlimited)' -r
complete -c ftpdlib -l max-login-attempts -d 'max number of failed authentications before disconnect (default: 3)' -r
complete -c ftpdlib -l ban-after -d 'ban an address after N failed logins within --ban-window: refused at connect (421) for --ban-time (default: 0, never)' -r
complete -c ftpdlib -l ban-window -d 'how far back failed logins count towards a ban (default: 600)' -r
complete -c ftpdlib -l ban-time -d 'how long a ban lasts (default: 3600)' -r
complete -c ftpdlib -l ban-allow -d 'addresses and networks never banned' -r
complete -c ftpdlib -l backlog -d 'the listen backlog: connections the kernel queues before they are accepted (default: 1024)' -r
complete -c ftpdlib -l auth-failed-timeout -d 'delay before the reply to a failed login (default: 3)' -r
complete -c ftpdlib -l auth-workers -d 'threads that check passwords off the event loop (default: 0, on the loop)' -r
complete -c ftpdlib -l log-prefix -d 'the prefix of a session\'s log lines, with %(remote_ip)s, %(remote_port)s and %(username)s (default: \'%(remote_ip)s:%(remote_port)s-[%(username)s]\')' -r
complete -c ftpdlib -l log-file -d 'append the log to this file instead of standard error; SIGUSR1 reopens it (logrotate)' -r -F
complete -c ftpdlib -l log-format -d 'the log lines\' format: \'text\' (pyftpdlib\'s, default) or \'json\' (one object per line with time, level and message)' -r
complete -c ftpdlib -l xferlog -d 'append a line per file transfer to this file, in wu-ftpd\'s xferlog format; SIGUSR1 reopens it' -r -F
complete -c ftpdlib -l syslog-socket -d 'the syslog daemon\'s datagram socket (default: /dev/log); implies --syslog' -r -F
complete -c ftpdlib -l read-limit -d 'limit each upload to this many bytes per second (K, M, G suffixes; 0 = no limit)' -r
complete -c ftpdlib -l write-limit -d 'limit each download to this many bytes per second (K, M, G suffixes; 0 = no limit)' -r
complete -c ftpdlib -l server-read-limit -d 'limit all uploads of the server together to this many bytes per second, shared by every session and process (K, M, G suffixes; 0 = no limit)' -r
complete -c ftpdlib -l server-write-limit -d 'limit all downloads of the server together to this many bytes per second (K, M, G suffixes; 0 = no limit)' -r
complete -c ftpdlib -l user-read-limit -d 'limit all uploads of each user together (every session of that user) to this many bytes per second (K, M, G suffixes; 0 = no limit)' -r
complete -c ftpdlib -l user-write-limit -d 'limit all downloads of each user together to this many bytes per second (K, M, G suffixes; 0 = no limit)' -r
complete -c ftpdlib -l proxy-protocol-from -d 'expect a PROXY protocol header (v1 or v2) on every connection, and accept connections only from these proxies (e.g. 127.0.0.1 or 10.0.0.0/8)' -r
complete -c ftpdlib -l metrics -d 'serve Prometheus metrics on http://ADDR/metrics (and /healthz), e.g. 127.0.0.1:9100 or :9100 for every interface' -r
complete -c ftpdlib -l completions -d 'print the completion script for SHELL (bash, zsh, fish, elvish or powershell) and exit' -r
complete -c ftpdlib -s h -l help -d 'show this help message and exit'
complete -c ftpdlib -l version -d 'print the version and exit'
complete -c ftpdlib -s w -l write -d 'grants write access for logged in user (default: read-only)'
complete -c ftpdlib -s D -l debug -d 'enable DEBUG logging level'
complete -c ftpdlib -l unix-users -d 'serve the system\'s accounts (needs root): passwords from the shadow database, sessions start in the user\'s home and act as that user'
complete -c ftpdlib -l tls -d 'whether to enable FTPS (FTP over TLS); requires --certfile'
complete -c ftpdlib -l tls-control-required -d 'impose TLS for the control connection (before login)'
complete -c ftpdlib -l tls-data-required -d 'impose TLS for the data connection'
complete -c ftpdlib -l tls-implicit -d 'implicit FTPS: TLS from the first byte (the port-990 convention), PROT P implied'
complete -c ftpdlib -l tls-require-reuse -d 'refuse TLS data connections that do not resume the control connection\'s TLS session (vsftpd\'s require_ssl_reuse)'
complete -c ftpdlib -l tls-client-cert-login -d 'with --tls-client-ca: a certificate whose common name (or e-mail / DNS name) is a user\'s name logs that user in without a password (232)'
complete -c ftpdlib -l permit-foreign-addresses -d 'allow data connections from an IP address different than the control connection'
complete -c ftpdlib -l permit-privileged-ports -d 'allow data connections (PORT) over privileged TCP ports'
complete -c ftpdlib -l use-localtime -d 'display directory listings with the time in your local time zone (default: use GMT)'
complete -c ftpdlib -l disable-sendfile -d 'disable sendfile(2) and splice(2), used for faster file transfers'
complete -c ftpdlib -l list-all -d 'LIST shows dot-files without -a, as pyftpdlib does (default: only with -a)'
complete -c ftpdlib -l passive-only -d 'offer passive data connections only: PORT and EPRT are answered 502'
complete -c ftpdlib -l active-only -d 'offer active data connections only: PASV and EPSV are answered 502'
complete -c ftpdlib -l atomic-uploads -d 'uploads go to a hidden temporary, renamed over the target once complete; APPE and REST+STOR are refused'
complete -c ftpdlib -l fsync-uploads -d 'the 226 of an upload is sent once the file (and a new name) is on disk (fdatasync, fsync of the directory)'
complete -c ftpdlib -l site-utime -d 'enable SITE UTIME (set a file\'s modification time; needs the T permission)'
complete -c ftpdlib -l site-symlink -d 'enable SITE SYMLINK (relative links inside the user\'s root; needs the w permission)'
complete -c ftpdlib -l syslog -d 'send the log to syslog (/dev/log, facility daemon) instead of standard error'
complete -c ftpdlib -l man -d 'print the manual page (roff, for man -l -) and exit'
complete -c ftpdlib -l hash-password -d 'read a password from stdin, print its crypt(3) hash (for --users-file) and exit'
