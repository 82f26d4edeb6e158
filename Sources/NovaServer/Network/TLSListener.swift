#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// How the SwiftNIO listeners (plain and TLS) are set up: one set of socket options, one reading of `bind`.
enum NIOListening {
    /// A server bootstrap with the configured backlog and keepalive; `handlers` fills each connection's
    /// pipeline.
    static func bootstrap(
        group: MultiThreadedEventLoopGroup, settings: ServerSettings,
        handlers: @escaping @Sendable (any Channel) throws -> Void
    ) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: Int32(settings.tcpBacklog))
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: settings.tcpKeepalive > 0 ? 1 : 0)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try handlers(channel) }
            }
    }

    /// Binds `port` on every `bind` address (`-addr` optional, `*` and `::*` wildcards, as Redis). On
    /// failure the listeners already bound are closed.
    static func bind(_ bootstrap: ServerBootstrap, addresses: [String], port: Int) async throws -> [any Channel] {
        var listeners: [any Channel] = []
        for entry in addresses.isEmpty ? ["127.0.0.1"] : addresses {
            let optional = entry.hasPrefix("-")
            var host = optional ? String(entry.dropFirst()) : entry
            if host == "*" { host = "0.0.0.0" }
            if host == "::*" { host = "::" }
            do {
                listeners.append(try await bootstrap.bind(host: host, port: port).get())
            } catch {
                if optional { continue }
                for listener in listeners { try? await listener.close() }
                throw error
            }
        }
        return listeners
    }
}

/// A TLS problem in the configuration (missing or unreadable certificate, key or CA).
struct TLSSetupError: Error, CustomStringConvertible {
    let description: String
}

/// The `tls-port` listener: swift-nio-ssl in front of the same connection handler as the SwiftNIO
/// transport. Certificates are read when it starts and again when CONFIG SET changes a `tls-*` file
/// (new connections use the new ones; open connections keep theirs), as Redis does.
final class TLSListener: @unchecked Sendable {
    private let server: ServerCore
    private let group: MultiThreadedEventLoopGroup
    private let context: NIOLockedValueBox<NIOSSLContext>
    private let listeners = NIOLockedValueBox<[any Channel]>([])
    private let applied: NIOLockedValueBox<TLSSettings>

    /// Reads the certificates of `tls`; throws when they are missing or invalid.
    init(server: ServerCore, tls: TLSSettings, threads: Int) throws {
        self.server = server
        self.context = NIOLockedValueBox(try Self.makeContext(tls))
        self.applied = NIOLockedValueBox(tls)
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    }

    /// The server-side TLS context for `tls`, with Redis's checks.
    static func makeContext(_ tls: TLSSettings) throws -> NIOSSLContext {
        guard !tls.certFile.isEmpty else { throw TLSSetupError(description: "No tls-cert-file configured!") }
        guard !tls.keyFile.isEmpty else { throw TLSSetupError(description: "No tls-key-file configured!") }
        let certificates: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(tls.certFile)
        } catch {
            throw TLSSetupError(description: "Failed to load certificate: \(tls.certFile): \(error)")
        }
        do {
            if tls.keyFilePassword.isEmpty {
                key = try NIOSSLPrivateKey(file: tls.keyFile, format: .pem)
            } else {
                let password = Array(tls.keyFilePassword.utf8)
                key = try NIOSSLPrivateKey(file: tls.keyFile, format: .pem) { (setter: NIOSSLPassphraseSetter<[UInt8]>) in
                    setter(password)
                }
            }
        } catch {
            throw TLSSetupError(description: "Failed to load private key: \(tls.keyFile): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificates.map { .certificate($0) }, privateKey: .privateKey(key))
        switch tls.authClients {
        case "no":
            configuration.certificateVerification = .none
        case "optional":
            configuration.certificateVerification = .optionalVerification
        default:
            configuration.certificateVerification = .noHostnameVerification
        }
        if tls.authClients != "no" {
            guard !tls.caCertFile.isEmpty || !tls.caCertDir.isEmpty else {
                throw TLSSetupError(description: "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or tls-auth-clients are enabled!")
            }
            var authorities: [NIOSSLCertificate] = []
            do {
                if !tls.caCertFile.isEmpty { authorities += try NIOSSLCertificate.fromPEMFile(tls.caCertFile) }
                for file in Self.files(in: tls.caCertDir) {
                    authorities += (try? NIOSSLCertificate.fromPEMFile(file)) ?? []
                }
            } catch {
                throw TLSSetupError(description: "Failed to configure CA certificate(s) file/directory: \(error)")
            }
            configuration.trustRoots = .certificates(authorities)
        }
        if !tls.protocols.isEmpty {
            let versions: [(String, TLSVersion)] = [("tlsv1", .tlsv1), ("tlsv1.1", .tlsv11), ("tlsv1.2", .tlsv12), ("tlsv1.3", .tlsv13)]
            let chosen = tls.protocols.lowercased().split(separator: " ").map(String.init)
            let enabled = versions.filter { chosen.contains($0.0) }.map(\.1)
            guard !enabled.isEmpty, enabled.count == chosen.count else {
                throw TLSSetupError(description: "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'.")
            }
            configuration.minimumTLSVersion = enabled.first!
            configuration.maximumTLSVersion = enabled.last!
        }
        if !tls.ciphers.isEmpty { configuration.cipherSuites = tls.ciphers }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError(description: "Failed to configure TLS: \(error)")
        }
    }

    private static func files(in directory: String) -> [String] {
        guard !directory.isEmpty, let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var result: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if !name.hasPrefix(".") { result.append(directory + "/" + name) }
        }
        return result.sorted()
    }

    /// Binds `tls-port` on every `bind` address. Returns the bound addresses.
    func start(_ settings: ServerSettings) async throws -> [(host: String, port: Int)] {
        let bootstrap = NIOListening.bootstrap(group: group, settings: settings) { [server, context] channel in
            let tls = NIOSSLServerHandler(context: context.withLockedValue { $0 })
            try channel.pipeline.syncOperations.addHandler(tls)
            try channel.pipeline.syncOperations.addHandler(TLSErrorHandler())
            try channel.pipeline.syncOperations.addHandler(NIOConnectionHandler(server: server))
        }
        let bound: [any Channel]
        do {
            bound = try await NIOListening.bind(bootstrap, addresses: settings.bind, port: settings.tls.port)
        } catch {
            throw TLSSetupError(description: "Could not create server TLS listening socket on port \(settings.tls.port): \(error)")
        }
        listeners.withLockedValue { $0 = bound }
        return bound.compactMap { channel in channel.localAddress.map { ($0.ipAddress ?? "?", $0.port ?? 0) } }
    }

    /// Re-reads the certificates after CONFIG SET of a `tls-*` file or option; nil on success, else the
    /// reason (the old context stays in use).
    func reload(_ tls: TLSSettings) -> String? {
        guard applied.withLockedValue({ $0 }) != tls else { return nil }
        do {
            let fresh = try Self.makeContext(tls)
            context.withLockedValue { $0 = fresh }
            applied.withLockedValue { $0 = tls }
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Closes the listeners and stops the event loops (connections are closed by the server first).
    func stop() async {
        for listener in listeners.withLockedValue({ $0 }) { try? await listener.close() }
        try? await group.shutdownGracefully()
    }
}

/// Closes a connection whose TLS handshake or record layer failed, without logging per connection (a
/// scanner must not fill the log), as Redis does at its default log level.
private final class TLSErrorHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOSSLError || error is BoringSSLError {
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }
}
