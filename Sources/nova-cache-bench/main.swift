// Measures the NovaCache library (scripts/bench-cache runs it beside redis-py and prints the table):
//   memory   — a memory-tier hit: median ns per call of 1,000-call batches (CacheManager.getValue, zero-copy;
//              CacheManager.getBytes; MemoryTier.lookup); `--profile N` then runs N more getValue calls in
//              one loop, for `perf record` (docs/performance.md); `--profile-typed N` the same for typed hits
//   remote   — GET through the pool with N concurrent tasks: requests/s
//   cluster  — SET/GET on a Redis Cluster (--url with the seeds) with N concurrent tasks, optionally pipelined:
//              requests/s and client CPU per request (scripts/bench-cluster runs it beside redis-py's RedisCluster)
//   peer     — a CacheManager driven line by line from stdin (tests run two as separate processes)
//   zipf     — getOrLoad over a Zipf-distributed replay of customer searches: % of loader calls avoided
//   footprint — resident bytes per memory-tier entry with and without kept decoded values (--decoded 0|1)
//
//   nova-cache-bench memory|remote|zipf [--url URL] [--tasks N] [--requests N] [--keys N] [--searches N] [--profile N]
import Foundation
import Logging
import NovaCache
import NovaClient
import Synchronization

var arguments = Array(CommandLine.arguments.dropFirst())
guard let mode = arguments.first else {
    print("usage: nova-cache-bench memory|remote|zipf [--url URL] [--tasks N] [--requests N] [--keys N] [--searches N]")
    exit(2)
}
arguments.removeFirst()
var parsed: [String: String] = [:]
while arguments.count >= 2 { parsed[arguments.removeFirst()] = arguments.removeFirst() }
let options = parsed
let url = options["--url"] ?? "redis://127.0.0.1:6379/0"
func option(_ name: String, _ fallback: Int) -> Int { Int(options[name] ?? "") ?? fallback }

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .error
    return handler
}

final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}

/// User plus system CPU seconds of this process so far.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func nanoseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
}

/// The measurements run here, off the main actor: a call from main-actor code to the library's
/// nonisolated async methods would hop threads twice per call and measure the hops.
func run(mode: String) async throws {
switch mode {
case "memory":
    // Offline manager (nothing listens on the URL's port) so only the memory tier is measured.
    let cache = try CacheManager(url: url, namespace: "bench")
    let keys = option("--keys", 10_000)
    let value = [UInt8](repeating: 120, count: 100)
    for index in 0..<keys { await cache.setBytes("customer:\(index)", value, policy: .customerSearch) }
    let names = (0..<keys).map { "customer:\($0)" }
    let stored = names.map { cache.storedKey($0) }
    let batch = 1000
    var managerSamples: [Double] = []
    var tierSamples: [Double] = []
    var valueSamples: [Double] = []
    var sink = 0
    for round in 0..<300 {
        let start = ContinuousClock.now
        for index in 0..<batch { sink &+= await cache.getBytes(names[(round * batch + index) % keys])?.count ?? 0 }
        managerSamples.append(nanoseconds(ContinuousClock.now - start) / Double(batch))
        let tierStart = ContinuousClock.now
        for index in 0..<batch { sink &+= cache.memory.lookup(stored[(round * batch + index) % keys])?.payload.count ?? 0 }
        tierSamples.append(nanoseconds(ContinuousClock.now - tierStart) / Double(batch))
        let valueStart = ContinuousClock.now
        for index in 0..<batch { sink &+= await cache.getValue(names[(round * batch + index) % keys])?.count ?? 0 }
        valueSamples.append(nanoseconds(ContinuousClock.now - valueStart) / Double(batch))
    }
    precondition(sink == 3 * 300 * batch * 100, "misses during the memory benchmark")
    if options["--profile"] != nil {
        let start = ContinuousClock.now
        let calls = Int(options["--profile"]!) ?? 1
        for index in 0..<calls { sink &+= await cache.getValue(names[index % keys])?.count ?? 0 }
        print(String(format: "memory_hit_zero_copy_profiled_ns=%.0f", nanoseconds(ContinuousClock.now - start) / Double(calls)))
    }
    // A typed hit: the memory tier returns the decoded value it keeps beside the bytes (a 4-field record
    // written with set, so the written value is kept). Over 1,000 hot keys (the working set fits the L2
    // cache), and over the same 10,000 keys as the byte hits (it does not: every hit also misses on the
    // value's box and its out-of-line strings).
    struct Customer: Codable, Sendable { var id: Int; var name: String; var email: String; var city: String }
    func customer(_ index: Int) -> Customer {
        Customer(id: index, name: "Customer \(index)", email: "c\(index)@example.com", city: "Berlin")
    }
    let typedNames = (0..<keys).map { "typed:\($0)" }
    /// ns per typed read over `rounds` batches of 1,000 of the first `keyCount` keys in turn, each batch
    /// after `prepare`.
    func typedReads(rounds: Int, keyCount: Int, prepare: (Range<Int>) async throws -> Void = { _ in }) async throws -> [Double] {
        var samples: [Double] = []
        for round in 0..<rounds {
            let first = (round * batch) % keyCount
            let range = first..<min(first + batch, keyCount)
            try await prepare(range)
            let start = ContinuousClock.now
            for index in range {
                guard let found = try await cache.get(typedNames[index], as: Customer.self) else { preconditionFailure("typed miss") }
                sink &+= found.id
            }
            samples.append(nanoseconds(ContinuousClock.now - start) / Double(range.count))
        }
        return samples
    }
    for index in 0..<keys { try await cache.set(typedNames[index], customer(index), policy: .customerSearch) }
    print(String(format: "memory_hit_typed_ns_median=%.0f", median(try await typedReads(rounds: 300, keyCount: min(batch, keys)))))
    print(String(format: "memory_hit_typed_all_keys_ns_median=%.0f", median(try await typedReads(rounds: 300, keyCount: keys))))
    // The zero-copy byte hit over 1,000 keys, beside the typed one.
    var hotSamples: [Double] = []
    for _ in 0..<300 {
        let start = ContinuousClock.now
        for index in 0..<min(batch, keys) { sink &+= await cache.getValue(names[index])?.count ?? 0 }
        hotSamples.append(nanoseconds(ContinuousClock.now - start) / Double(min(batch, keys)))
    }
    print(String(format: "memory_hit_zero_copy_hot_ns_median=%.0f", median(hotSamples)))
    if let calls = options["--profile-typed"].flatMap({ Int($0) }) {
        let start = ContinuousClock.now
        for index in 0..<calls { sink &+= try await cache.get(typedNames[index % keys], as: Customer.self)?.id ?? 0 }
        print(String(format: "memory_hit_typed_profiled_ns=%.0f", nanoseconds(ContinuousClock.now - start) / Double(calls)))
    }
    // The first typed read of bytes nobody decoded yet (written as bytes, as a remote hit or another
    // language would leave them): JSON decoding plus keeping the result.
    let encoder = JSONCacheCodec()
    let firstReads = try await typedReads(rounds: 30, keyCount: keys) { range in
        for index in range { await cache.setBytes(typedNames[index], try encoder.encode(customer(index)), policy: .customerSearch) }
    }
    print(String(format: "memory_hit_typed_first_read_ns_median=%.0f", median(firstReads)))
    print(String(format: "memory_hit_ns_median=%.0f", median(managerSamples)))
    print(String(format: "memory_tier_lookup_ns_median=%.0f", median(tierSamples)))
    print(String(format: "memory_hit_zero_copy_ns_median=%.0f", median(valueSamples)))
    cache.shutdown()

case "remote":
    let tasks = option("--tasks", 50)
    let requests = option("--requests", 200_000)
    let client = RedisClient(url: try RedisURL(url), pool: .init(minimumConnections: 4, maximumConnections: 8))
    try await client.set("bench:key", .bytes([UInt8](repeating: 120, count: 100)))
    let perTask = requests / tasks
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<tasks {
            group.addTask {
                for _ in 0..<perTask { _ = try await client.get("bench:key") }
            }
        }
        try await group.waitForAll()
    }
    let seconds = nanoseconds(ContinuousClock.now - start) / 1e9
    print(String(format: "remote_get_rps=%.0f", Double(perTask * tasks) / seconds))
    client.shutdown()

case "cluster":
    // SET/GET (half each) on --keys keys spread over a cluster's slots, --tasks at once; with --pipeline P,
    // each task sends P commands per round trip. Client CPU from getrusage.
    let tasks = option("--tasks", 50)
    let requests = option("--requests", 100_000)
    let keys = option("--keys", 10_000)
    let depth = option("--pipeline", 1)
    var configuration = try RedisClusterClient.Configuration(url)
    configuration.pool = .init(minimumConnections: 1, maximumConnections: 4)
    let client = RedisClusterClient(configuration: configuration)
    let value = RedisArgument.bytes([UInt8](repeating: 120, count: 100))
    _ = try await client.pipeline((0..<keys).map { RedisCommand("SET", .string("bench:\($0)"), value) })
    let perTask = requests / tasks / depth
    let cpuBefore = processCPUSeconds()
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for task in 0..<tasks {
            group.addTask {
                var index = task
                for _ in 0..<perTask {
                    if depth == 1 {
                        let key = RedisArgument.string("bench:\(index % keys)")
                        if index % 2 == 0 { try await client.set(key, value) } else { _ = try await client.get(key) }
                        index += tasks
                    } else {
                        var commands: [RedisCommand] = []
                        commands.reserveCapacity(depth)
                        for _ in 0..<depth {
                            let key = RedisArgument.string("bench:\(index % keys)")
                            commands.append(index % 2 == 0 ? RedisCommand("SET", key, value) : RedisCommand("GET", key))
                            index += tasks
                        }
                        _ = try await client.pipeline(commands)
                    }
                }
            }
        }
        try await group.waitForAll()
    }
    let seconds = nanoseconds(ContinuousClock.now - start) / 1e9
    let done = Double(perTask * tasks * depth)
    print(String(format: "cluster_rps=%.0f client_cpu_us_per_request=%.2f", done / seconds, (processCPUSeconds() - cpuBefore) / done * 1e6))
    client.shutdown()

case "zipf":
    let searches = option("--searches", 100_000)
    let distinct = option("--keys", 10_000)
    var configuration = CacheManager.Configuration(url: try RedisURL(url), namespace: "bench-zipf")
    configuration.memory = MemoryTier.Configuration(maxEntries: distinct / 10)  // memory holds 10% of the queries
    let cache = CacheManager(configuration: configuration)
    await cache.waitUntilReady()
    await cache.clear()
    // Zipf (s = 1) over `distinct` queries, by inverse transform on the cumulative weights.
    var cumulative: [Double] = []
    var total = 0.0
    for rank in 1...distinct { total += 1 / Double(rank); cumulative.append(total) }
    var generator = SystemRandomNumberGenerator()
    let upstream = Counter()
    for _ in 0..<searches {
        let target = Double.random(in: 0..<total, using: &generator)
        var low = 0, high = distinct - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < target { low = middle + 1 } else { high = middle }
        }
        let rank = low
        _ = try await cache.getOrLoad("search:q\(rank)", policy: .customerSearch) { () async throws -> [String] in
            upstream.increment()
            return ["customer \(rank)"]
        }
    }
    let calls = upstream.value
    let stats = cache.statistics
    print("zipf_searches=\(searches)")
    print("zipf_loader_calls=\(calls)")
    print(String(format: "zipf_loader_calls_avoided_pct=%.1f", 100 * (1 - Double(calls) / Double(searches))))
    print(String(format: "zipf_memory_hit_pct=%.1f", 100 * Double(stats.memoryHits) / Double(searches)))
    await cache.clear()
    cache.shutdown()

case "footprint":
    // Resident memory per memory-tier entry for `--keys` typed writes of a 4-field record, with the
    // written values kept decoded (`--decoded 1`, the default) or not (`--decoded 0`): what a kept decoded
    // value costs beside its bytes. Offline manager; run each setting in its own process.
    struct Customer: Codable, Sendable { var id: Int; var name: String; var email: String; var city: String }
    let keys = option("--keys", 100_000)
    var configuration = CacheManager.Configuration(url: try RedisURL(url), namespace: "bench")
    configuration.memory = MemoryTier.Configuration(maxEntries: keys, maxBytes: 1 << 32, maxDecodedValues: option("--decoded", 1) == 0 ? 0 : keys)
    let cache = CacheManager(configuration: configuration)
    func residentBytes() -> Int {
        let fields = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8))?.split(separator: " ") ?? []
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }
    let before = residentBytes()
    for index in 0..<keys {
        let value = Customer(id: index, name: "Customer \(index)", email: "c\(index)@example.com", city: "Berlin")
        try await cache.set("typed:\(index)", value, policy: .customerSearch)
    }
    let after = residentBytes()
    print("footprint_entries=\(cache.memory.count)")
    print(String(format: "footprint_resident_bytes_per_entry=%.0f", Double(after - before) / Double(keys)))
    print(String(format: "footprint_accounted_bytes_per_entry=%.0f", Double(cache.memory.bytes) / Double(keys)))
    cache.shutdown()

case "peer":
    // A CacheManager driven line by line from stdin, answering one line each on stdout, so that tests run
    // several as processes of their own: `ready`, `set KEY VALUE [TAG]`, `get KEY`, `cached KEY` (in the
    // memory tier?), `invalidate TAG`, `status`.
    var configuration = try CacheManager.Configuration(url: url, namespace: options["--namespace"] ?? "peer")
    configuration.coherence = .tracking
    configuration.remoteTimeout = .milliseconds(500)
    configuration.maxRecoveryInterval = .milliseconds(300)
    let cache = CacheManager(configuration: configuration)
    while let line = readLine() {
        let words = line.split(separator: " ").map(String.init)
        guard let command = words.first else { continue }
        switch (command, words.count) {
        case ("ready", 1): print(await cache.waitUntilReady(timeout: .seconds(10)))
        case ("set", 3), ("set", 4):
            try await cache.set(words[1], words[2], tags: words.count == 4 ? [words[3]] : [])
            print("OK")
        case ("get", 2): print(try await cache.get(words[1], as: String.self) ?? "(nil)")
        case ("cached", 2): print(cache.memory.lookup(cache.storedKey(words[1])) != nil ? "yes" : "no")
        case ("invalidate", 2):
            await cache.invalidate(tag: words[1])
            print("OK")
        case ("status", 1): print(cache.remoteStatus)
        default: print("ERR unknown \(line)")
        }
        fflush(nil)
    }
    cache.shutdown()

default:
    print("unknown mode \(mode)")
    exit(2)
}
}

try await Task.detached { try await run(mode: mode) }.value
