import ArgumentParser
import Foundation
import NIOCore
import NovaClient

/// `nova-cache ping`: PONG and the round-trip time; exit 1 when unreachable.
struct Ping: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that the server answers.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reporting {
            let client = try await connection.connectRemote().client
            defer { client.shutdown() }
            let started = ContinuousClock.now
            let answer = try await client.ping()
            let elapsed = ContinuousClock.now - started
            print("\(answer) (\(elapsed.formatted(.units(allowed: [.milliseconds, .microseconds], width: .narrow))))")
        }
    }
}

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a key's value (exit 1 when missing).")
    @OptionGroup var connection: ConnectionOptions
    @Argument var key: String

    func run() async throws {
        try await reporting {
            let client = try await connection.connectRemote().client
            defer { client.shutdown() }
            guard let value = try await client.get(.string(key)) else { throw CLIFailure("\(key): no such key") }
            FileHandle.standardOutput.write(Data(value.readableBytesView) + Data("\n".utf8))
        }
    }
}

struct Set: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Set a key, optionally with a time to live.")
    @OptionGroup var connection: ConnectionOptions
    @Argument var key: String
    @Argument var value: String
    @Option(help: "Time to live in seconds.") var ttl: Double?

    func run() async throws {
        try await reporting {
            let client = try await connection.connectRemote().client
            defer { client.shutdown() }
            try await client.set(.string(key), .string(value), expiresIn: ttl.map { .milliseconds(Int64($0 * 1000)) })
            print("OK")
        }
    }
}

struct Del: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete keys; prints how many existed.")
    @OptionGroup var connection: ConnectionOptions
    @Argument var keys: [String]

    func run() async throws {
        try await reporting {
            let client = try await connection.connectRemote().client
            defer { client.shutdown() }
            print(try await client.unlink(keys.map { .string($0) }))
        }
    }
}

struct TTL: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A key's remaining time to live.")
    @OptionGroup var connection: ConnectionOptions
    @Argument var key: String

    func run() async throws {
        try await reporting {
            let client = try await connection.connectRemote().client
            defer { client.shutdown() }
            switch try await client.ttl(.string(key)) {
            case .missing: throw CLIFailure("\(key): no such key")
            case .persistent: print("no expiry")
            case .expiresIn(let left):
                let (seconds, attoseconds) = left.components
                print(String(format: "%.3f s", Double(seconds) + Double(attoseconds) / 1e18))
            }
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List keys matching a pattern (SCAN, never KEYS).")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "A glob pattern.") var pattern: String = "*"
    @Option(help: "Print at most this many keys.") var limit: Int?

    func run() async throws {
        try await reporting {
            let client = try await connection.connectRemote().client
            defer { client.shutdown() }
            var keys = try await client.scanKeys(matching: pattern).map { String(buffer: $0) }.sorted()
            if let limit { keys = Array(keys.prefix(limit)) }
            for key in keys { print(key) }
        }
    }
}

/// `nova-cache shutdown`: SHUTDOWN [SAVE|NOSAVE] (the systemd unit's ExecStop).
struct Shutdown: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop the server (SHUTDOWN), saving a snapshot with --save.")
    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Save a snapshot first, even without save rules.") var save = false
    @Flag(help: "Do not save, even with save rules.") var nosave = false

    func run() async throws {
        try await reporting {
            guard !(save && nosave) else { throw CLIFailure("--save and --nosave exclude each other", exitCode: 2) }
            let client = try await connection.connect()
            defer { client.shutdown() }
            var arguments: [RedisArgument] = []
            if save { arguments.append("SAVE") }
            if nosave { arguments.append("NOSAVE") }
            do {
                try await client.send(RedisCommand("SHUTDOWN", arguments: arguments))
                throw CLIFailure("the server did not shut down")
            } catch let error as RedisClientError {
                // The server closes the connection instead of answering: that is the success case.
                guard case .connectionClosed = error else { throw error }
                print("server stopped")
            }
        }
    }
}
