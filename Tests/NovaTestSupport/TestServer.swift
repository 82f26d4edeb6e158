public import Foundation
import NIOCore
import NIOPosix
import NovaClient

/// A server process for integration tests: nova-cache-server (the built binary) or Debian's redis-server,
/// on a free loopback port, that a test can stop (SIGSTOP), kill and restart on the same port.
public final class TestServer: @unchecked Sendable {
    public enum Kind: String, CaseIterable, Sendable, CustomStringConvertible {
        case nova, redis
        public var description: String { rawValue }
    }

    public let kind: Kind
    public private(set) var port: Int
    public let directory: URL
    public let extraArguments: [String]
    private var process: Process?

    public init(_ kind: Kind, arguments: [String] = []) throws {
        self.kind = kind
        port = try Self.freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("novacache-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        extraArguments = arguments
        try start()
    }

    deinit {
        // SIGKILL by pid: Process.terminate() relies on Foundation's view of the child, which a SIGSTOP /
        // SIGCONT cycle can leave believing it already exited (redis-server processes outlived the tests).
        if let process { Foundation.kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }

    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts the server; when its port was taken meanwhile (tests run in parallel), tries another one.
    public func start() throws {
        for attempt in 0..<5 {
            if attempt > 0 { port = try Self.freePort() }
            if try launch() { return }
        }
        throw TestServerError("\(kind) could not start")
    }

    /// Starts the process on `port`; false when it exited (port in use) instead of serving.
    private func launch() throws -> Bool {
        let process = Process()
        switch kind {
        case .nova:
            process.executableURL = URL(fileURLWithPath: try Self.novaBinary())
            process.arguments = ["--port", "\(port)", "--dir", directory.path, "--save", ""] + extraArguments
        case .redis:
            process.executableURL = URL(fileURLWithPath: try Self.which("redis-server"))
            process.arguments = ["--port", "\(port)", "--dir", directory.path, "--save", "", "--appendonly", "no"] + extraArguments
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        try waitUntilServing()
        // Whatever answered must be this process: one that could not bind exits at once.
        usleep(50_000)
        if !process.isRunning {
            self.process = nil
            return false
        }
        return true
    }

    /// Whether the server's process runs.
    public var isRunning: Bool { process?.isRunning ?? false }

    /// Kills the process (SIGKILL) and waits for it to go.
    public func kill() {
        guard let process else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// Stops the process (SIGSTOP) and waits until the kernel reports it stopped: the signal is delivered
    /// asynchronously, and a server still running on the other core would answer one more command.
    public func pause() {
        guard let process else { return }
        Foundation.kill(process.processIdentifier, SIGSTOP)
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")"),
                stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("T") {
                return
            }
            usleep(1000)
        }
    }
    public func resume() { if let process { Foundation.kill(process.processIdentifier, SIGCONT) } }

    /// Kills the process, stopped or not (SIGKILL needs no SIGCONT; a SIGCONT first would let the server
    /// answer what queued up meanwhile).
    public func stop() {
        kill()
    }

    private func waitUntilServing() throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let process, !process.isRunning { return }
            if let socket = try? Self.connectedSocket(port) {
                close(socket)
                return
            }
            usleep(20_000)
        }
        throw TestServerError("\(kind) did not start on port \(port)")
    }

    public static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
        guard bound == 0 else { throw TestServerError("bind failed") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func connectedSocket(_ port: Int) throws -> Int32 {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(socket)
            throw TestServerError("connect failed")
        }
        return socket
    }

    /// The nova-cache-server binary: `NOVA_SERVER_BIN`, else the package's release or debug build.
    static func novaBinary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["NOVA_SERVER_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for configuration in ["release", "debug"] {
            let path = root.appendingPathComponent(".build/\(configuration)/nova-cache-server").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw TestServerError("nova-cache-server not built: run `swift build -c release` or set NOVA_SERVER_BIN")
    }

    public static func which(_ name: String) throws -> String {
        for directory in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
            let path = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw TestServerError("\(name) not installed (scripts/install-test-deps installs it)")
    }
}

/// A loopback port that refuses connections for as long as this object lives: bound, never listening, so
/// no server started by a parallel test can take it.
public final class RefusingPort: @unchecked Sendable {
    public let port: Int
    private let socket: Int32

    public init() throws {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.socket = socket
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
        guard bound == 0 else {
            close(socket)
            throw TestServerError("bind failed")
        }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(socket) }
}

public struct TestServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` until it holds or `timeout` passes.
public func eventually(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}
