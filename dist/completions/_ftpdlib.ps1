
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'ftpdlib' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'ftpdlib'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'ftpdlib' {
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'specify the interface to run on (default: all interfaces)')
            [CompletionResult]::new('--interface', '--interface', [CompletionResultType]::ParameterName, 'specify the interface to run on (default: all interfaces)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'specify port number to run on (default: 2121)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'specify port number to run on (default: 2121)')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'specify the directory to share (default: current directory)')
            [CompletionResult]::new('--directory', '--directory', [CompletionResultType]::ParameterName, 'specify the directory to share (default: current directory)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'the NAT address to use for passive connections')
            [CompletionResult]::new('--nat-address', '--nat-address', [CompletionResultType]::ParameterName, 'the NAT address to use for passive connections')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'the range of TCP ports to use for passive connections (e.g. -r 8000-9000)')
            [CompletionResult]::new('--range', '--range', [CompletionResultType]::ParameterName, 'the range of TCP ports to use for passive connections (e.g. -r 8000-9000)')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'specify username to login with (anonymous login will be disabled and password required if supplied)')
            [CompletionResult]::new('--username', '--username', [CompletionResultType]::ParameterName, 'specify username to login with (anonymous login will be disabled and password required if supplied)')
            [CompletionResult]::new('-P', '-P ', [CompletionResultType]::ParameterName, 'specify a password to login with (username required to be useful)')
            [CompletionResult]::new('--password', '--password', [CompletionResultType]::ParameterName, 'specify a password to login with (username required to be useful)')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'the FTP server concurrency model to use, either ''async'' (default), ''multi-thread'', ''multi-proc'', ''pre-fork'' or ''multi-loop''')
            [CompletionResult]::new('--workers', '--workers', [CompletionResultType]::ParameterName, 'worker processes (pre-fork) or loop threads (multi-loop); 0 = one per CPU')
            [CompletionResult]::new('--perm', '--perm', [CompletionResultType]::ParameterName, 'exactly these permission letters (e.g. elr, elradfmwMT) for the -u user or anonymous, or for every system user with --unix-users; overrides -w')
            [CompletionResult]::new('--quota-bytes', '--quota-bytes', [CompletionResultType]::ParameterName, 'the most bytes the -u user''s files may hold (K, M, G suffixes); an upload past it is refused with 552 and removed')
            [CompletionResult]::new('--quota-files', '--quota-files', [CompletionResultType]::ParameterName, 'the most files the -u user''s home may hold (K, M, G suffixes)')
            [CompletionResult]::new('--users-file', '--users-file', [CompletionResultType]::ParameterName, 'serve the virtual users of this file: one name:hash:home:perms per line, the hash made by --hash-password')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'read the options (long names as keys) and [[users]] from this TOML file; the command line and FTPDLIB_* variables win over it')
            [CompletionResult]::new('--keyfile', '--keyfile', [CompletionResultType]::ParameterName, 'the TLS key file (default: the certificate file)')
            [CompletionResult]::new('--certfile', '--certfile', [CompletionResultType]::ParameterName, 'the TLS certificate file')
            [CompletionResult]::new('--tls-client-ca', '--tls-client-ca', [CompletionResultType]::ParameterName, 'mutual TLS: clients must present a certificate signed by a CA of this PEM file, else the handshake fails')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'connection timeout (default: 300 seconds; 0 = none)')
            [CompletionResult]::new('--data-timeout', '--data-timeout', [CompletionResultType]::ParameterName, 'idle timeout of data connections (default: --timeout; 0 = none)')
            [CompletionResult]::new('--passive-timeout', '--passive-timeout', [CompletionResultType]::ParameterName, 'how long a passive listener waits for the client to connect (default: 30)')
            [CompletionResult]::new('--active-timeout', '--active-timeout', [CompletionResultType]::ParameterName, 'how long an active (PORT) connect may take (default: 30)')
            [CompletionResult]::new('--banner', '--banner', [CompletionResultType]::ParameterName, 'the message sent when client connects (default: ''ftpdlib 0.1.0 ready.'')')
            [CompletionResult]::new('--encoding', '--encoding', [CompletionResultType]::ParameterName, 'the encoding used for client / server communication: utf-8 (default), latin-1, or any ASCII-based encoding of the WHATWG Encoding Standard (windows-1251, shift_jis, gbk, euc-kr, koi8-r ...)')
            [CompletionResult]::new('--nat-address-for', '--nat-address-for', [CompletionResultType]::ParameterName, 'the address announced in PASV replies to clients of a network (the first network that holds the client wins; others get -n), e.g. 192.168.0.0/16=192.168.1.10')
            [CompletionResult]::new('--virtual-host', '--virtual-host', [CompletionResultType]::ParameterName, 'virtual hosts (RFC 7151 HOST, or the TLS SNI name): each NAME''s users come from its users file, its certificate from CERTFILE')
            [CompletionResult]::new('--max-cons', '--max-cons', [CompletionResultType]::ParameterName, 'max number of simultaneous connections (default: 512)')
            [CompletionResult]::new('--max-cons-per-ip', '--max-cons-per-ip', [CompletionResultType]::ParameterName, 'maximum number of connections from the same IP address (default: unlimited)')
            [CompletionResult]::new('--max-login-attempts', '--max-login-attempts', [CompletionResultType]::ParameterName, 'max number of failed authentications before disconnect (default: 3)')
            [CompletionResult]::new('--ban-after', '--ban-after', [CompletionResultType]::ParameterName, 'ban an address after N failed logins within --ban-window: refused at connect (421) for --ban-time (default: 0, never)')
            [CompletionResult]::new('--ban-window', '--ban-window', [CompletionResultType]::ParameterName, 'how far back failed logins count towards a ban (default: 600)')
            [CompletionResult]::new('--ban-time', '--ban-time', [CompletionResultType]::ParameterName, 'how long a ban lasts (default: 3600)')
            [CompletionResult]::new('--ban-allow', '--ban-allow', [CompletionResultType]::ParameterName, 'addresses and networks never banned')
            [CompletionResult]::new('--backlog', '--backlog', [CompletionResultType]::ParameterName, 'the listen backlog: connections the kernel queues before they are accepted (default: 1024)')
            [CompletionResult]::new('--auth-failed-timeout', '--auth-failed-timeout', [CompletionResultType]::ParameterName, 'delay before the reply to a failed login (default: 3)')
            [CompletionResult]::new('--auth-workers', '--auth-workers', [CompletionResultType]::ParameterName, 'threads that check passwords off the event loop (default: 0, on the loop)')
            [CompletionResult]::new('--log-prefix', '--log-prefix', [CompletionResultType]::ParameterName, 'the prefix of a session''s log lines, with %(remote_ip)s, %(remote_port)s and %(username)s (default: ''%(remote_ip)s:%(remote_port)s-[%(username)s]'')')
            [CompletionResult]::new('--log-file', '--log-file', [CompletionResultType]::ParameterName, 'append the log to this file instead of standard error; SIGUSR1 reopens it (logrotate)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'the log lines'' format: ''text'' (pyftpdlib''s, default) or ''json'' (one object per line with time, level and message)')
            [CompletionResult]::new('--xferlog', '--xferlog', [CompletionResultType]::ParameterName, 'append a line per file transfer to this file, in wu-ftpd''s xferlog format; SIGUSR1 reopens it')
            [CompletionResult]::new('--syslog-socket', '--syslog-socket', [CompletionResultType]::ParameterName, 'the syslog daemon''s datagram socket (default: /dev/log); implies --syslog')
            [CompletionResult]::new('--read-limit', '--read-limit', [CompletionResultType]::ParameterName, 'limit each upload to this many bytes per second (K, M, G suffixes; 0 = no limit)')
            [CompletionResult]::new('--write-limit', '--write-limit', [CompletionResultType]::ParameterName, 'limit each download to this many bytes per second (K, M, G suffixes; 0 = no limit)')
            [CompletionResult]::new('--server-read-limit', '--server-read-limit', [CompletionResultType]::ParameterName, 'limit all uploads of the server together to this many bytes per second, shared by every session and process (K, M, G suffixes; 0 = no limit)')
            [CompletionResult]::new('--server-write-limit', '--server-write-limit', [CompletionResultType]::ParameterName, 'limit all downloads of the server together to this many bytes per second (K, M, G suffixes; 0 = no limit)')
            [CompletionResult]::new('--user-read-limit', '--user-read-limit', [CompletionResultType]::ParameterName, 'limit all uploads of each user together (every session of that user) to this many bytes per second (K, M, G suffixes; 0 = no limit)')
            [CompletionResult]::new('--user-write-limit', '--user-write-limit', [CompletionResultType]::ParameterName, 'limit all downloads of each user together to this many bytes per second (K, M, G suffixes; 0 = no limit)')
            [CompletionResult]::new('--proxy-protocol-from', '--proxy-protocol-from', [CompletionResultType]::ParameterName, 'expect a PROXY protocol header (v1 or v2) on every connection, and accept connections only from these proxies (e.g. 127.0.0.1 or 10.0.0.0/8)')
            [CompletionResult]::new('--metrics', '--metrics', [CompletionResultType]::ParameterName, 'serve Prometheus metrics on http://ADDR/metrics (and /healthz), e.g. 127.0.0.1:9100 or :9100 for every interface')
            [CompletionResult]::new('--completions', '--completions', [CompletionResultType]::ParameterName, 'print the completion script for SHELL (bash, zsh, fish, elvish or powershell) and exit')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'show this help message and exit')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'show this help message and exit')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'print the version and exit')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'grants write access for logged in user (default: read-only)')
            [CompletionResult]::new('--write', '--write', [CompletionResultType]::ParameterName, 'grants write access for logged in user (default: read-only)')
            [CompletionResult]::new('-D', '-D ', [CompletionResultType]::ParameterName, 'enable DEBUG logging level')
            [CompletionResult]::new('--debug', '--debug', [CompletionResultType]::ParameterName, 'enable DEBUG logging level')
            [CompletionResult]::new('--unix-users', '--unix-users', [CompletionResultType]::ParameterName, 'serve the system''s accounts (needs root): passwords from the shadow database, sessions start in the user''s home and act as that user')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'whether to enable FTPS (FTP over TLS); requires --certfile')
            [CompletionResult]::new('--tls-control-required', '--tls-control-required', [CompletionResultType]::ParameterName, 'impose TLS for the control connection (before login)')
            [CompletionResult]::new('--tls-data-required', '--tls-data-required', [CompletionResultType]::ParameterName, 'impose TLS for the data connection')
            [CompletionResult]::new('--tls-implicit', '--tls-implicit', [CompletionResultType]::ParameterName, 'implicit FTPS: TLS from the first byte (the port-990 convention), PROT P implied')
            [CompletionResult]::new('--tls-require-reuse', '--tls-require-reuse', [CompletionResultType]::ParameterName, 'refuse TLS data connections that do not resume the control connection''s TLS session (vsftpd''s require_ssl_reuse)')
            [CompletionResult]::new('--tls-client-cert-login', '--tls-client-cert-login', [CompletionResultType]::ParameterName, 'with --tls-client-ca: a certificate whose common name (or e-mail / DNS name) is a user''s name logs that user in without a password (232)')
            [CompletionResult]::new('--permit-foreign-addresses', '--permit-foreign-addresses', [CompletionResultType]::ParameterName, 'allow data connections from an IP address different than the control connection')
            [CompletionResult]::new('--permit-privileged-ports', '--permit-privileged-ports', [CompletionResultType]::ParameterName, 'allow data connections (PORT) over privileged TCP ports')
            [CompletionResult]::new('--use-localtime', '--use-localtime', [CompletionResultType]::ParameterName, 'display directory listings with the time in your local time zone (default: use GMT)')
            [CompletionResult]::new('--disable-sendfile', '--disable-sendfile', [CompletionResultType]::ParameterName, 'disable sendfile(2) and splice(2), used for faster file transfers')
            [CompletionResult]::new('--list-all', '--list-all', [CompletionResultType]::ParameterName, 'LIST shows dot-files without -a, as pyftpdlib does (default: only with -a)')
            [CompletionResult]::new('--passive-only', '--passive-only', [CompletionResultType]::ParameterName, 'offer passive data connections only: PORT and EPRT are answered 502')
            [CompletionResult]::new('--active-only', '--active-only', [CompletionResultType]::ParameterName, 'offer active data connections only: PASV and EPSV are answered 502')
            [CompletionResult]::new('--atomic-uploads', '--atomic-uploads', [CompletionResultType]::ParameterName, 'uploads go to a hidden temporary, renamed over the target once complete; APPE and REST+STOR are refused')
            [CompletionResult]::new('--fsync-uploads', '--fsync-uploads', [CompletionResultType]::ParameterName, 'the 226 of an upload is sent once the file (and a new name) is on disk (fdatasync, fsync of the directory)')
            [CompletionResult]::new('--site-utime', '--site-utime', [CompletionResultType]::ParameterName, 'enable SITE UTIME (set a file''s modification time; needs the T permission)')
            [CompletionResult]::new('--site-symlink', '--site-symlink', [CompletionResultType]::ParameterName, 'enable SITE SYMLINK (relative links inside the user''s root; needs the w permission)')
            [CompletionResult]::new('--syslog', '--syslog', [CompletionResultType]::ParameterName, 'send the log to syslog (/dev/log, facility daemon) instead of standard error')
            [CompletionResult]::new('--man', '--man', [CompletionResultType]::ParameterName, 'print the manual page (roff, for man -l -) and exit')
            [CompletionResult]::new('--hash-password', '--hash-password', [CompletionResultType]::ParameterName, 'read a password from stdin, print its crypt(3) hash (for --users-file) and exit')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
