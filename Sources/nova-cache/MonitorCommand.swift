import ArgumentParser
import Foundation
import NovaClient
import NovaRESP

/// `nova-cache monitor`: streams every command the server runs (MONITOR), one line each.
struct Monitor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream every command the server runs (MONITOR). Costly on a busy server: use briefly.")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Stop after this many commands.") var count: Int?

    func run() async throws {
        try await reporting {
            var url = try connection.resolvedURL()
            url.commandTimeout = nil
            let (lines, line) = AsyncStream<String>.makeStream()
            let monitor = try await RedisConnection.connect(to: url) { frame in
                switch frame {
                case .simpleString(let text): line.yield(text)
                case .error(let text): line.yield("ERROR " + text)
                default: break
                }
            }
            monitor.closeFuture.whenComplete { _ in line.finish() }
            defer { monitor.close() }
            // Every frame from here on is a monitor line (the first is MONITOR's +OK).
            try await monitor.enterSubscriberMode()
            monitor.sendWithoutReply(RedisCommand("MONITOR"))
            var confirmed = false
            var printed = 0
            for await text in lines {
                if !confirmed {
                    guard text == "OK" else { throw CLIFailure("MONITOR refused: \(text)") }
                    confirmed = true
                    FileHandle.standardError.write(Data("monitoring \(url) (Ctrl-C to stop)\n".utf8))
                    continue
                }
                print(text)
                fflush(nil)
                printed += 1
                if let count, printed >= count { return }
            }
            if !confirmed { throw CLIFailure("connection closed before MONITOR started") }
        }
    }
}
