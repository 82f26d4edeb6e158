// A walk through the NovaCache library that mirrors the deployment it replaces:
// `CacheManager(url: "redis://localhost:6379/1")`, create/read/update/delete, a cached customer search with
// a 1 h policy whose loader counts upstream calls, then a loop that keeps answering while the server is
// stopped and started again.
//
//   nova-cache-demo [--url redis://127.0.0.1:6379/1] [--loop SECONDS]
import Foundation
import Logging
import NovaCache
import NovaClient
import Synchronization

struct Customer: Codable, Sendable, Hashable {
    var id: Int
    var name: String
    var city: String
}

/// Stands in for the CRM: counts how often it is really asked.
final class CRM: Sendable {
    private let calls = Mutex(0)
    let customers = [
        Customer(id: 1, name: "Ada Lovelace", city: "London"),
        Customer(id: 2, name: "Grace Hopper", city: "Arlington"),
        Customer(id: 3, name: "Alan Turing", city: "Wilmslow"),
    ]
    var upstreamCalls: Int { calls.withLock { $0 } }

    func search(_ text: String) async throws -> [Customer] {
        calls.withLock { $0 += 1 }
        try await Task.sleep(for: .milliseconds(50))  // a slow upstream
        return customers.filter { $0.name.localizedCaseInsensitiveContains(text) || $0.city.localizedCaseInsensitiveContains(text) }
    }
}

let usage = """
    usage: nova-cache-demo [--url URL] [--loop SECONDS]
      --url URL        the cache server (default: REDIS_URL, else redis://127.0.0.1:6379/1)
      --loop SECONDS   then keep reading and writing for SECONDS: stop and start the server meanwhile
    """

/// A usage error: the message and the usage on stderr, exit 2.
func usageError(_ message: String) -> Never {
    FileHandle.standardError.write(Data("nova-cache-demo: \(message)\n\(usage)\n".utf8))
    exit(2)
}

/// A duration in milliseconds (microseconds below one), for people.
func milliseconds(_ duration: Duration) -> String {
    let value = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    return value < 1 ? String(format: "%.0f µs", value * 1000) : String(format: "%.1f ms", value)
}

var arguments = CommandLine.arguments.dropFirst()
var url = ProcessInfo.processInfo.environment["REDIS_URL"] ?? "redis://127.0.0.1:6379/1"
var loopSeconds = 0
while let argument = arguments.popFirst() {
    switch argument {
    case "--help", "-h":
        print(usage)
        exit(0)
    case "--url":
        guard let value = arguments.popFirst() else { usageError("--url needs a URL") }
        url = value
    case "--loop":
        guard let value = arguments.popFirst().flatMap({ Int($0) }), value >= 0 else { usageError("--loop needs a number of seconds") }
        loopSeconds = value
    default:
        usageError("unknown argument '\(argument)'")
    }
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .info
    return handler
}

let cache: CacheManager
do {
    cache = try CacheManager(url: url, namespace: "demo")
} catch {
    usageError("\(error)")
}
await cache.waitUntilReady()
print("cache: \(url) — remote \(cache.isRemoteAvailable ? "reachable" : "unreachable (memory only)")")

// Create, read, update, delete.
let ada = Customer(id: 1, name: "Ada Lovelace", city: "London")
try await cache.set("customer:1", ada, policy: .customerSearch)
print("read:    \(try await cache.get("customer:1", as: Customer.self).map { "\($0)" } ?? "nil")")
try await cache.set("customer:1", Customer(id: 1, name: "Ada King", city: "London"), policy: .customerSearch)
print("updated: \(try await cache.get("customer:1", as: Customer.self).map { "\($0)" } ?? "nil")")
print("ttl:     \(await cache.ttl("customer:1"))")
await cache.delete("customer:1")
print("deleted: \(try await cache.get("customer:1", as: Customer.self).map { "\($0)" } ?? "nil")")

// A cached customer search: the loader runs once per query, however often it is asked.
let crm = CRM()
for query in ["london", "grace", "london", "london", "grace"] {
    let started = ContinuousClock.now
    let found = try await cache.getOrLoad("search:\(query)", policy: .customerSearch) { try await crm.search(query) }
    print("search \(query): \(found.map(\.name)) in \(milliseconds(ContinuousClock.now - started))")
}
print("upstream calls for 5 searches: \(crm.upstreamCalls)")

// Keep answering while the server is stopped and restarted (stop it from another terminal).
if loopSeconds > 0 {
    print("looping for \(loopSeconds) s: stop the server (kill -STOP / systemctl stop) and start it again")
    let end = ContinuousClock.now + .seconds(loopSeconds)
    var tick = 0
    while ContinuousClock.now < end {
        tick += 1
        let started = ContinuousClock.now
        try await cache.set("tick", tick, policy: .userSession)
        let found = try await cache.getOrLoad("search:london", policy: .customerSearch) { try await crm.search("london") }
        let elapsed = ContinuousClock.now - started
        let stats = cache.statistics
        print("tick \(tick): \(found.count) customers in \(milliseconds(elapsed)) — remote \(cache.isRemoteAvailable ? "up" : "DOWN"), "
            + "pending \(stats.pendingReplays), replayed \(stats.replayedWrites), upstream calls \(crm.upstreamCalls)")
        try await Task.sleep(for: .milliseconds(500))
    }
}
print("stats: \(cache.statistics)")
cache.shutdown()
