import ArgumentParser
import Foundation
import NovaClient

/// `nova-cache flush --db N` (or a URL naming the database) / `--all`: asks on a terminal, needs --yes
/// elsewhere.
struct Flush: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove every key of one database (FLUSHDB), or of all with --all (FLUSHALL).")

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Flush every database (FLUSHALL).") var all = false
    @Flag(name: [.customShort("y"), .long], help: "Do not ask for confirmation (scripts).") var yes = false

    func run() async throws {
        let named = try connection.namedDatabase()
        if all == (named != nil) {
            throw ValidationError("give either the database (--db N, or a URL ending in /N) or --all")
        }
        let db = named ?? 0
        try await reporting {
            let client = try await connection.connect()
            defer { client.shutdown() }
            let url = try connection.resolvedURL()
            let keys = keyspace(try await client.info("keyspace"))
            let affected = all ? keys.reduce(0) { $0 + $1.keys } : keys.first { $0.db == db }?.keys ?? 0
            let target = all ? "ALL databases" : "database \(db)"
            if !yes {
                guard isatty(0) == 1 else {
                    throw CLIFailure("refusing to flush \(target) without confirmation: add --yes", exitCode: 2)
                }
                print("Flush \(target) on \(url) (\(affected) keys)? Type 'yes' to confirm: ", terminator: "")
                fflush(nil)
                guard readLine()?.trimmingCharacters(in: .whitespaces).lowercased() == "yes" else {
                    throw CLIFailure("not flushed", exitCode: 3)
                }
            }
            if all {
                try await client.send("FLUSHALL")
            } else {
                try await client.send("FLUSHDB")  // the connection's database is `db`
            }
            print("flushed \(target): \(affected) keys removed")
        }
    }
}
