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
        let named = connection.namesCluster ? 0 : try connection.namedDatabase()
        if all == (named != nil) && !connection.namesCluster {
            throw ValidationError("give either the database (--db N, or a URL ending in /N) or --all")
        }
        let db = named ?? 0
        try await reporting {
            let remote = try await connection.connectRemote()
            defer { remote.shutdown() }
            let target: String
            let affected: Int
            let place: String
            switch remote {
            case .server(let client):
                let keys = keyspace(try await client.info("keyspace"))
                affected = all ? keys.reduce(0) { $0 + $1.keys } : keys.first { $0.db == db }?.keys ?? 0
                target = all ? "ALL databases" : "database \(db)"
                place = try connection.resolvedURL().description
            case .cluster(let cluster):
                // DBSIZE and FLUSHALL/FLUSHDB go to every primary (their command tips): the sum, and all of them.
                affected = Int(try await cluster.send("DBSIZE").integer())
                target = "the whole cluster"
                place = "\(try await cluster.topology().primaries.count) primaries"
            }
            if !yes {
                guard isatty(0) == 1 else {
                    throw CLIFailure("refusing to flush \(target) without confirmation: add --yes", exitCode: 2)
                }
                print("Flush \(target) on \(place) (\(affected) keys)? Type 'yes' to confirm: ", terminator: "")
                fflush(nil)
                guard readLine()?.trimmingCharacters(in: .whitespaces).lowercased() == "yes" else {
                    throw CLIFailure("not flushed", exitCode: 3)
                }
            }
            if all {
                try await remote.client.send("FLUSHALL")
            } else {
                try await remote.client.send("FLUSHDB")  // one server: the connection's database is `db`
            }
            print("flushed \(target): \(affected) keys removed")
        }
    }
}
