#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `nova-cache-server --install-service` writes: a systemd unit, a default configuration and the data
/// directory. The same texts are in deploy/ for reading and for hand installation (a test keeps them equal).
package enum ServiceInstall {
    /// Paths and the service account.
    package struct Layout: Sendable {
        package var root = "/"
        package var user = "nova-cache"
        package var binDirectory = "/usr/local/bin"
        package var configPath = "/etc/nova-cache/nova-cache.conf"
        package var dataDirectory = "/var/lib/nova-cache"
        package var unitPath = "/etc/systemd/system/nova-cache.service"
        package var backupDirectory = "/var/backups/nova-cache"
        package var backupServicePath = "/etc/systemd/system/nova-cache-backup.service"
        package var backupTimerPath = "/etc/systemd/system/nova-cache-backup.timer"

        package init() {}

        func inRoot(_ path: String) -> String {
            root == "/" ? path : (root.hasSuffix("/") ? String(root.dropLast()) : root) + path
        }
    }

    /// The sandbox both units share, after their own `ProtectSystem=strict` and writable paths: Debian's
    /// redis-server.service's (no capabilities, no devices, kernel and clock protected, a system-call allow
    /// list).
    static let sandbox = """
        ProtectHome=yes
        PrivateTmp=yes
        PrivateDevices=yes
        PrivateUsers=yes
        NoNewPrivileges=yes
        CapabilityBoundingSet=
        AmbientCapabilities=
        ProtectClock=yes
        ProtectControlGroups=yes
        ProtectHostname=yes
        ProtectKernelLogs=yes
        ProtectKernelModules=yes
        ProtectKernelTunables=yes
        ProtectProc=invisible
        RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
        RestrictNamespaces=yes
        RestrictRealtime=yes
        RestrictSUIDSGID=yes
        LockPersonality=yes
        MemoryDenyWriteExecute=yes
        RemoveIPC=yes
        SystemCallArchitectures=native
        SystemCallFilter=@system-service
        SystemCallFilter=~@privileged @resources
        """

    /// The systemd unit: a dedicated user, restart on failure, many file descriptors, a stop that saves a
    /// snapshot (SHUTDOWN SAVE through the nova-cache CLI; SIGTERM, systemd's fallback, saves too), and the
    /// sandbox of Debian's redis-server.service: read-only system, writable data directory only, no
    /// capabilities, no devices, a system-call allow list (`systemd-analyze security` exposure 1.x).
    package static func unit(_ layout: Layout) -> String {
        """
        [Unit]
        Description=NovaCache server (Redis protocol cache)
        Documentation=https://github.com/novacache/novacache
        After=network-online.target
        Wants=network-online.target

        [Service]
        Type=simple
        User=\(layout.user)
        Group=\(layout.user)
        ExecStart=\(layout.binDirectory)/nova-cache-server \(layout.configPath)
        # The CLI reads the password, if any, from NOVA_CACHE_PASSWORD in this file (mode 0600).
        EnvironmentFile=-/etc/nova-cache/cli.env
        ExecStop=\(layout.binDirectory)/nova-cache shutdown --save
        Restart=on-failure
        RestartSec=2
        TimeoutStopSec=120
        LimitNOFILE=65536
        UMask=0077
        # The sandbox: only the data directory is writable; logs go to the journal (stderr).
        ProtectSystem=strict
        ReadWritePaths=\(layout.dataDirectory)
        \(sandbox)

        [Install]
        WantedBy=multi-user.target

        """
    }

    /// The daily backup's service: `nova-cache backup` as the service user (it reads the snapshot from the
    /// data directory), 14 kept, in the same kind of sandbox as the server.
    package static func backupService(_ layout: Layout) -> String {
        """
        [Unit]
        Description=NovaCache daily backup (nova-cache backup)
        Documentation=https://github.com/novacache/novacache
        After=nova-cache.service
        Requires=nova-cache.service

        [Service]
        Type=oneshot
        User=\(layout.user)
        Group=\(layout.user)
        EnvironmentFile=-/etc/nova-cache/cli.env
        ExecStart=\(layout.binDirectory)/nova-cache backup --to \(layout.backupDirectory) --keep 14
        UMask=0077
        ProtectSystem=strict
        ReadWritePaths=\(layout.backupDirectory)
        ReadOnlyPaths=\(layout.dataDirectory)
        \(sandbox)

        """
    }

    /// The daily backup's timer (a random delay of up to an hour; a missed run happens at the next boot).
    package static func backupTimer(_ layout: Layout) -> String {
        """
        [Unit]
        Description=NovaCache daily backup

        [Timer]
        OnCalendar=daily
        RandomizedDelaySec=1h
        Persistent=true

        [Install]
        WantedBy=timers.target

        """
    }

    /// The directory this executable is in (the build directory when run from a checkout).
    package static func executableDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let path = length > 0 ? String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }

    /// The default configuration: loopback only, protected mode, snapshots and AOF on, bounded memory.
    package static func configuration(_ layout: Layout) -> String {
        """
        # NovaCache server configuration (redis.conf syntax).
        # Check it with: nova-cache-server --check-config \(layout.configPath)
        bind 127.0.0.1 -::1
        port 6379
        protected-mode yes
        # Set a long random password before opening the server to other hosts:
        # requirepass <password>
        # Or application users (ACL; passwords are kept as SHA-256, `ACL GENPASS` makes one):
        # user app on ><password> ~app:* &app:* +@all -@dangerous
        # TLS (clients need a certificate signed by the CA unless tls-auth-clients is no):
        # tls-port 6380
        # tls-cert-file /etc/nova-cache/tls/server.crt
        # tls-key-file /etc/nova-cache/tls/server.key
        # tls-ca-cert-file /etc/nova-cache/tls/ca.crt
        dir \(layout.dataDirectory)
        dbfilename dump.rdb
        save 3600 1 300 100 60 10000
        appendonly yes
        appendfsync everysec
        maxmemory 1gb
        maxmemory-policy allkeys-lfu
        maxclients 10000
        timeout 0
        loglevel notice
        logfile ""
        # The live dashboard (http://127.0.0.1:8379/), Prometheus /metrics and /api/stats, on the `bind`
        # addresses; with requirepass or ACL users it asks for them (HTTP Basic), over TLS when tls-port is set.
        http-port 8379
        # Alerts: logged when they fire and resolve, in INFO nova, nova_alert_firing in /metrics, the
        # dashboard's banner, and `nova-cache status` exits 2.
        alert-memory 90%
        # alert-hit-ratio 80
        # alert-hit-ratio-window 300

        """
    }

    /// The command that creates the service account (in the root's `/etc` files when it is not `/`).
    package static func accountCommand(_ layout: Layout) -> [String] {
        ["useradd"] + (layout.root == "/" ? [] : ["--prefix", layout.root])
            + ["--system", "--user-group", "--no-create-home", "--home-dir", layout.dataDirectory, "--shell", "/usr/sbin/nologin", layout.user]
    }

    /// The account's user and group ids from the root's `/etc/passwd` (not the running system's when
    /// installing into another root).
    static func account(_ layout: Layout) -> (uid: uid_t, gid: gid_t)? {
        guard let passwd = ConfigStore.readFile(layout.inRoot("/etc/passwd")) else { return nil }
        for line in passwd.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 4, fields[0] == layout.user, let uid = uid_t(fields[2]), let gid = gid_t(fields[3]) else { continue }
            return (uid, gid)
        }
        return nil
    }

    /// Writes the unit (always) and the configuration (only when absent), creates the service account
    /// when it is missing (as root; otherwise refuses, with the command to run), the data directory with
    /// mode 0700 owned by the account, and gives the account's group read access to the configuration.
    /// - Returns: what was done, one line each.
    package static func install(_ layout: Layout) throws(ServiceInstallError) -> [String] {
        var done: [String] = []
        var owner = account(layout)
        if owner == nil {
            let command = accountCommand(layout)
            guard getuid() == 0 else {
                throw ServiceInstallError(
                    "the service user '\(layout.user)' does not exist and only root can create it: run this as root, or first\n"
                        + "  sudo \(command.joined(separator: " "))")
            }
            let status = run(command)
            guard status == 0, let created = account(layout) else {
                throw ServiceInstallError("could not create the service user '\(layout.user)' (\(command.joined(separator: " ")) exited with \(status))")
            }
            owner = created
            done.append("created the system user \(layout.user) (uid \(created.uid))")
        }
        for (text, path) in [(unit(layout), layout.unitPath), (backupService(layout), layout.backupServicePath),
                             (backupTimer(layout), layout.backupTimerPath)] {
            try write(text, to: layout.inRoot(path), mode: 0o644)
            done.append("wrote \(layout.inRoot(path))")
        }
        let config = layout.inRoot(layout.configPath)
        if access(config, F_OK) == 0 {
            done.append("kept existing \(config)")
        } else {
            try write(configuration(layout), to: config, mode: 0o640)
            done.append("wrote \(config)")
        }
        let data = layout.inRoot(layout.dataDirectory)
        let backups = layout.inRoot(layout.backupDirectory)
        for directory in [data, backups] {
            try makeDirectories(directory, mode: 0o700)
            chmod(directory, 0o700)
        }
        if let owner, getuid() == 0 {
            for path in [data, backups] where chown(path, owner.uid, owner.gid) != 0 {
                throw ServiceInstallError("cannot give \(path) to \(layout.user): \(String(cString: strerror(errno)))")
            }
            if chown(config, 0, owner.gid) != 0 {
                throw ServiceInstallError("cannot give \(config) to group \(layout.user): \(String(cString: strerror(errno)))")
            }
            done.append("data directory \(data) and backups \(backups) (mode 0700, owner \(layout.user)); \(config) readable by group \(layout.user)")
        } else {
            done.append("data directory \(data) and backups \(backups) (mode 0700; not root: owner left as is)")
        }
        return done
    }

    /// Runs a command (looked up in PATH) and waits for it; its exit status (127 when it could not start).
    private static func run(_ arguments: [String]) -> Int32 {
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        guard posix_spawnp(&pid, arguments[0], nil, nil, &argv, environ) == 0 else { return 127 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    private static func write(_ text: String, to path: String, mode: mode_t) throws(ServiceInstallError) {
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectories(String(path[..<slash]), mode: 0o755)
        }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
        guard descriptor >= 0 else { throw ServiceInstallError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ systemWrite(descriptor, $0.baseAddress, $0.count) }) == bytes.count else {
            throw ServiceInstallError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        fchmod(descriptor, mode)
    }

    /// Creates `path` with `mode` and its missing parents with 0755.
    private static func makeDirectories(_ path: String, mode: mode_t) throws(ServiceInstallError) {
        var current = ""
        let parts = path.split(separator: "/")
        for (index, part) in parts.enumerated() {
            current += "/" + part
            if mkdir(current, index == parts.count - 1 ? mode : 0o755) != 0 && errno != EEXIST {
                throw ServiceInstallError("cannot create \(current): \(String(cString: strerror(errno)))")
            }
        }
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#else
private let systemWrite = Darwin.write
#endif

/// Why the service could not be installed.
package struct ServiceInstallError: Error, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}
