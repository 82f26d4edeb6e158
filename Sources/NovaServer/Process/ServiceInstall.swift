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

        package init() {}

        func inRoot(_ path: String) -> String {
            root == "/" ? path : (root.hasSuffix("/") ? String(root.dropLast()) : root) + path
        }
    }

    /// The systemd unit: a dedicated user, restart on failure, many file descriptors, and a stop that
    /// saves a snapshot (SHUTDOWN SAVE through the nova-cache CLI; SIGTERM, systemd's fallback, saves too).
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
        ReadWritePaths=\(layout.dataDirectory)
        NoNewPrivileges=yes
        ProtectSystem=full
        ProtectHome=yes
        PrivateTmp=yes

        [Install]
        WantedBy=multi-user.target

        """
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

        """
    }

    /// Writes the unit (always) and the configuration (only when absent), and creates the data directory
    /// with mode 0700 (owned by the service user when it exists and we are root).
    /// - Returns: what was done, one line each.
    package static func install(_ layout: Layout) throws(ServiceInstallError) -> [String] {
        var done: [String] = []
        try write(unit(layout), to: layout.inRoot(layout.unitPath), mode: 0o644)
        done.append("wrote \(layout.inRoot(layout.unitPath))")
        let config = layout.inRoot(layout.configPath)
        if access(config, F_OK) == 0 {
            done.append("kept existing \(config)")
        } else {
            try write(configuration(layout), to: config, mode: 0o640)
            done.append("wrote \(config)")
        }
        let data = layout.inRoot(layout.dataDirectory)
        try makeDirectories(data, mode: 0o700)
        chmod(data, 0o700)
        if getuid() == 0, let account = getpwnam(layout.user) {
            chown(data, account.pointee.pw_uid, account.pointee.pw_gid)
            chown(config, 0, account.pointee.pw_gid)
        }
        done.append("data directory \(data) (mode 0700)")
        return done
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
