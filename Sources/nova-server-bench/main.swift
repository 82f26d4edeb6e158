// Measures the server's per-command CPU without sockets: the same pipelined requests redis-benchmark sends
// (16 commands per read) are decoded and run through the server core again and again, and the time per
// command is printed (minimum and median over rounds; the minimum is the figure least disturbed by other
// load on the machine). For comparing builds of a hot path; scripts/bench-vs-redis measures end to end.
//
//   nova-server-bench [--tests set,get,lpush,lpop,...] [--commands N] [--rounds N] [--pipeline N]
//                     [--config "latency-tracking no"]   (configuration directives, `;`-separated)
import Foundation
import Logging
import NIOCore
import NovaRESP
import NovaServer

var arguments = Array(CommandLine.arguments.dropFirst())
var options: [String: String] = [:]
while arguments.count >= 2 { options[arguments.removeFirst()] = arguments.removeFirst() }
let tests = (options["--tests"] ?? "ping,set,get,incr,lpush,lpop,sadd,hset,zadd").split(separator: ",").map(String.init)
let commandCount = Int(options["--commands"] ?? "") ?? 1_000_000
let rounds = Int(options["--rounds"] ?? "") ?? 7
let pipeline = Int(options["--pipeline"] ?? "") ?? 16

/// redis-benchmark's commands (its `-r 100000` random keys and members, 3-byte values).
func command(_ test: String, _ index: Int) -> [String] {
    let random = String(format: "%012d", (index &* 2_654_435_761) % 100_000)
    switch test {
    case "ping": return ["PING"]
    case "set": return ["SET", "key:\(random)", "xxx"]
    case "get": return ["GET", "key:\(random)"]
    case "incr": return ["INCR", "counter:\(random)"]
    case "lpush": return ["LPUSH", "mylist", "xxx"]
    case "lpop": return ["LPOP", "mylist"]
    case "sadd": return ["SADD", "myset", "element:\(random)"]
    case "hset": return ["HSET", "myhash", "element:\(random)", "xxx"]
    case "zadd": return ["ZADD", "myzset", "\(index % 1000)", "element:\(random)"]
    default:
        print("unknown test \(test)")
        exit(2)
    }
}

func encode(_ words: [String]) -> [UInt8] {
    var out = Array("*\(words.count)\r\n".utf8)
    for word in words { out += Array("$\(word.utf8.count)\r\n\(word)\r\n".utf8) }
    return out
}

/// Nanoseconds per command for one round of `test`.
func round(_ test: String, server: ServerCore, client: ClientState, reads: [ByteBuffer]) -> Double {
    var batch = CommandBatch()
    var decoder = RequestDecoder()
    var executed = 0
    let start = DispatchTime.now().uptimeNanoseconds
    while executed < commandCount {
        for read in reads {
            var inbound = read
            try! decoder.decode(&inbound, into: &batch)
            var writer = RESPWriter(buffer: ByteBuffer(), version: .v2)
            var next = 0
            _ = server.execute(batch, from: &next, client: client, reply: &writer)
            batch.removeAll()
            executed += pipeline
        }
    }
    return Double(DispatchTime.now().uptimeNanoseconds - start) / Double(executed)
}

LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
let config = ConfigStore()
var flags = ["--save", "", "--appendonly", "no"]
for directive in (options["--config"] ?? "").split(separator: ";") {
    let words = directive.split(separator: " ").map(String.init)
    if let name = words.first { flags += ["--" + name] + words.dropFirst() }
}
try config.load(flags: flags)
let server = ServerCore(config: config, logger: Logger(label: "bench"))
guard let client = server.register(connection: nil, address: "127.0.0.1:1", localAddress: "127.0.0.1:6379") else {
    fatalError("could not register a client")
}
print("ns per command, \(pipeline) commands per read, \(commandCount) commands per round, \(rounds) rounds")
print("| test | min | median |")
print("|---|---|---|")
for test in tests {
    // 64 distinct reads cycled, so keys vary as with redis-benchmark -r.
    let reads = (0..<64).map { read in
        ByteBuffer(bytes: (0..<pipeline).flatMap { encode(command(test, read * pipeline + $0)) })
    }
    var samples: [Double] = []
    for _ in 0..<rounds {
        if test == "lpop" {
            // Refill between rounds so every pop finds an element, as after redis-benchmark's LPUSH run.
            _ = round("lpush", server: server, client: client, reads: (0..<64).map { _ in
                ByteBuffer(bytes: (0..<pipeline).flatMap { _ in encode(command("lpush", 0)) }) })
        }
        samples.append(round(test, server: server, client: client, reads: reads))
    }
    samples.sort()
    print("| \(test.uppercased()) | \(String(format: "%.1f", samples[0])) | \(String(format: "%.1f", samples[samples.count / 2])) |")
}
