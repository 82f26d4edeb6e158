import ArgumentParser
import Foundation
import Logging
import MCP
import NovaCacheMCP

/// `nova-cache-mcp`: the connector cache, an MCP server in front of other MCP servers.
@main
struct NovaCacheMCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nova-cache-mcp",
        abstract: "An MCP gateway that caches upstream tool calls in NovaCache.",
        discussion: """
            Speaks MCP on stdin/stdout, or Streamable HTTP with --http (or an "http" section in the file). \
            The configuration file is described in docs/mcp-gateway.md; --check-config reads it, reports the first \
            mistake with its line and field, and exits.
            """
    )

    @Option(name: .long, help: "The gateway's configuration file (JSON).")
    var config: String?

    @Option(name: .customLong("check-config"), help: "Check this configuration file and exit (0 when it is valid).")
    var checkConfig: String?

    @Flag(name: .long, help: "Serve Streamable HTTP (the file's http section, or 127.0.0.1:8931/mcp) instead of stdio.")
    var http = false

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func run() async throws {
        // Logs go to stderr: on stdio, stdout is the MCP channel.
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level \(logLevel)") }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        if let checkConfig {
            do {
                let parsed = try GatewayConfiguration.load(path: checkConfig)
                print(parsed.summary)
                print("\(checkConfig): ok")
                return
            } catch let error as GatewayConfigurationError {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        guard let config else { throw ValidationError("give --config FILE (or --check-config FILE)") }
        let settings: GatewayConfiguration
        do {
            settings = try GatewayConfiguration.load(path: config)
        } catch let error as GatewayConfigurationError {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
        let logger = Logger(label: "nova.cache.mcp")
        let gateway = try Gateway(configuration: settings, logger: logger)
        await gateway.start()
        let stop = ShutdownSignal()
        if http || settings.http != nil {
            let front = GatewayHTTPServer(gateway: gateway, settings: settings.http ?? GatewayConfiguration.HTTP(), logger: logger)
            let address = try await front.start()
            logger.notice("serving MCP over Streamable HTTP", metadata: ["url": "http://\(address)\(front.settings.path)"])
            await stop.wait()
            await front.stop()
        } else {
            let server = await gateway.makeServer()
            await gateway.bind(server)
            try await server.start(transport: gateway.stdioTransport())
            // Ends when the client closes stdin, or on SIGTERM / SIGINT (which stops the server, so that
            // waiting for it returns: that wait does not end on cancellation).
            let stopper = Task {
                await stop.wait()
                await server.stop()
            }
            await server.waitUntilCompleted()
            stopper.cancel()
        }
        await gateway.shutdown()
    }
}

/// SIGTERM or SIGINT, once. (Unchecked: the signal sources are only kept alive, never touched again.)
final class ShutdownSignal: @unchecked Sendable {
    private let stream: AsyncStream<Void>
    private let sources: [any DispatchSourceSignal]

    init() {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        self.stream = stream
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { continuation.yield() }
            source.resume()
            return source
        }
    }

    func wait() async {
        for await _ in stream { return }
    }
}
