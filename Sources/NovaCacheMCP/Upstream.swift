import Foundation
import Logging
import MCP
import NovaCache
import NovaConnector

/// One upstream MCP server as the gateway sees it: a connection made on demand (a subprocess started,
/// or an HTTP session opened) and made again after the upstream died, its tools and resources (listed
/// once and again when it says they changed), and calls with a deadline.
actor Upstream {
    let configuration: GatewayConfiguration.Upstream
    private let logger: Logger
    /// Called after the lists were read: on connecting (`announced` false) and when the upstream said
    /// they changed (`announced` true).
    private let listsChanged: @Sendable (_ upstream: String, _ announced: Bool) async -> Void
    /// Called with every progress notification the upstream sends.
    private let progress: @Sendable (ProgressNotification.Parameters) async -> Void

    private var client: Client?
    private var process: Process?
    private var connecting: Task<Client, any Error>?
    private(set) var tools: [Tool] = []
    private(set) var resources: [Resource] = []
    private var capabilities = Server.Capabilities()

    init(
        _ configuration: GatewayConfiguration.Upstream, logger: Logger,
        listsChanged: @escaping @Sendable (String, Bool) async -> Void,
        progress: @escaping @Sendable (ProgressNotification.Parameters) async -> Void
    ) {
        self.configuration = configuration
        self.logger = logger
        self.listsChanged = listsChanged
        self.progress = progress
    }

    var name: String { configuration.name }

    /// Whether a connection is open (the lists are current).
    var isConnected: Bool { client != nil }

    /// The connected client, connecting first when there is none (one attempt shared by concurrent callers).
    func connected() async throws -> Client {
        if let client { return client }
        if let connecting { return try await connecting.value }
        let attempt = Task { try await connect() }
        connecting = attempt
        defer { connecting = nil }
        let client = try await attempt.value
        self.client = client
        return client
    }

    private func connect() async throws -> Client {
        let client = Client(name: "nova-cache-mcp", version: GatewayVersion.current)
        let transport: any Transport
        switch configuration.transport {
        case .command(let words, let environment, let directory):
            let (started, stdio) = try startProcess(words, environment: environment, directory: directory)
            process = started
            transport = stdio
        case .url(let address, let headers, let ca):
            transport = try HTTPUpstreamTransport(endpoint: URL(string: address)!, headers: headers, trustedCertificates: ca, logger: logger)
        }
        // The lists are read again in a task of their own: the client's message loop awaits its
        // notification handlers, so a handler waiting for the client's answer would wait forever.
        await client.onNotification(ToolListChangedNotification.self) { [weak self] _ in
            Task { await self?.refreshLists(reason: "tools/list_changed") }
        }
        await client.onNotification(ResourceListChangedNotification.self) { [weak self] _ in
            Task { await self?.refreshLists(reason: "resources/list_changed") }
        }
        await client.onNotification(ProgressNotification.self) { [progress] message in
            await progress(message.params)
        }
        do {
            let initialized = try await withDeadline(configuration.timeout, "initialize") { try await client.connect(transport: transport) }
            capabilities = initialized.capabilities
            try await readLists(client)
            await listsChanged(name, false)
            logger.info("upstream connected", metadata: [
                "upstream": "\(name)", "server": "\(initialized.serverInfo.name)", "tools": "\(tools.count)", "resources": "\(resources.count)",
            ])
            return client
        } catch {
            await client.disconnect()
            stopProcess()
            throw GatewayError.upstreamUnavailable(name, "\(error)")
        }
    }

    /// Starts the upstream's command with pipes for its stdin and stdout (stderr is the gateway's).
    private func startProcess(_ words: [String], environment: [String: String], directory: String?) throws -> (Process, PipeTransport) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = words
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.terminationHandler = { [weak self, name] ended in
            let status = ended.terminationStatus
            Task { await self?.processEnded(name: name, status: status, process: ended) }
        }
        try process.run()
        let transport = PipeTransport(input: output.fileHandleForReading.fileDescriptor, output: input.fileHandleForWriting.fileDescriptor, logger: logger)
        // The transport works on duplicates: the pipes' own ends are closed here, so that the upstream's
        // exit ends the stream and the gateway's exit ends the upstream's stdin.
        try? output.fileHandleForReading.close()
        try? input.fileHandleForWriting.close()
        return (process, transport)
    }

    /// The subprocess ended: forget the client (its pending calls fail), so the next call starts it again.
    private func processEnded(name: String, status: Int32, process ended: Process) async {
        guard ended === process else { return }
        logger.warning("upstream process exited; it is started again on the next call", metadata: ["upstream": "\(name)", "status": "\(status)"])
        process = nil
        await dropClient()
    }

    private func dropClient() async {
        let old = client
        client = nil
        await old?.disconnect()
    }

    private func stopProcess() {
        if let process, process.isRunning { process.terminate() }
        process = nil
    }

    /// Ends the connection and the subprocess.
    func shutdown() async {
        let running = process
        process = nil
        await dropClient()
        if let running, running.isRunning { running.terminate() }
    }

    /// Reads the tool and resource lists (every page).
    private func readLists(_ client: Client) async throws {
        let listed = capabilities.tools == nil ? [] : try await allPages("tools/list") { try await client.listTools(cursor: $0) }
        let found = capabilities.resources == nil ? [] : try await allPages("resources/list") { try await client.listResources(cursor: $0) }
        tools = listed
        resources = found
    }

    /// Every page of a paginated list, each page under the deadline.
    private func allPages<Item: Sendable>(
        _ what: String, _ page: @escaping @Sendable (String?) async throws -> (some Collection<Item> & Sendable, nextCursor: String?)
    ) async throws -> [Item] {
        var items: [Item] = []
        var cursor: String?
        repeat {
            let current = cursor
            let (found, next) = try await withDeadline(configuration.timeout, what) { try await page(current) }
            items += found
            cursor = next
        } while cursor != nil
        return items
    }

    private func refreshLists(reason: String) async {
        guard let client else { return }
        do {
            try await readLists(client)
            logger.info("upstream lists read again", metadata: ["upstream": "\(name)", "reason": "\(reason)", "tools": "\(tools.count)"])
        } catch {
            logger.warning("reading the upstream's lists failed", metadata: ["upstream": "\(name)", "error": "\(error)"])
        }
        await listsChanged(name, true)
    }

    /// Calls `tool` upstream; on the upstream's death or a missed deadline the connection is dropped (and
    /// made again by the next call). Cancelling the calling task cancels the upstream request. A call the
    /// upstream refused because it no longer knew the session (an HTTP upstream restarted) is sent again
    /// once in a new session: the upstream did not process it.
    func call(tool: String, arguments: [String: Value]?, meta: Metadata?) async throws -> CallTool.Result {
        try await inSession { client in try await self.call(tool: tool, arguments: arguments, meta: meta, on: client) }
    }

    private func call(tool: String, arguments: [String: Value]?, meta: Metadata?, on client: Client) async throws -> CallTool.Result {
        let request = CallTool.request(.init(name: tool, arguments: arguments, meta: meta))
        let context = try await client.send(request)
        do {
            return try await withTaskCancellationHandler {
                try await withDeadline(configuration.timeout, "tools/call \(tool)") { try await context.value }
            } onCancel: {
                Task { try? await client.cancelRequest(context.requestID, reason: "cancelled downstream") }
            }
        } catch let error as GatewayError {
            if case .upstreamTimedOut = error { Task { try? await client.cancelRequest(context.requestID, reason: "timed out") } }
            throw error
        }
    }

    /// Reads a resource upstream.
    func read(uri: String) async throws -> [Resource.Content] {
        try await inSession { client in
            try await self.withDeadline(self.configuration.timeout, "resources/read") { try await client.readResource(uri: uri) }
        }
    }

    /// Runs `body` with the connected client, translating failures into ``GatewayError``s: an error the
    /// upstream answered with is `upstreamFailed`; a broken connection (the process died, the stream
    /// ended) drops the client so that the next call starts afresh; an expired HTTP session is opened
    /// again and `body` run once more.
    private func inSession<R: Sendable>(_ body: @escaping @Sendable (Client) async throws -> R) async throws -> R {
        var attempts = 0
        while true {
            attempts += 1
            let client = try await connected()
            do {
                return try await body(client)
            } catch let error as MCPError {
                throw GatewayError.upstreamFailed(name, error.localizedDescription)
            } catch let error as GatewayError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch let expired as HTTPUpstreamTransport.SessionExpired {
                await dropClientIfCurrent(client)
                logger.info("upstream session expired; opening a new one", metadata: ["upstream": "\(name)"])
                if attempts >= 2 { throw GatewayError.upstreamUnavailable(name, "\(expired)") }
            } catch {
                await dropClientIfCurrent(client)
                throw GatewayError.upstreamUnavailable(name, "\(error)")
            }
        }
    }

    private func dropClientIfCurrent(_ broken: Client) async {
        guard client === broken else { return }
        await dropClient()
        stopProcess()
    }

    /// Runs `body`, failing with `upstreamTimedOut` after `limit` (and cancelling it) even when it ignores
    /// cancellation: the SDK's requests wait on tasks of their own that cancelling the caller does not reach.
    private func withDeadline<R: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> R) async throws -> R {
        let work = Task { try await body() }
        guard let value = try await withTaskCancellationHandler(operation: { try await result(of: work, within: limit) }, onCancel: { work.cancel() })
        else {
            work.cancel()
            throw GatewayError.upstreamTimedOut(name, what, limit)
        }
        return value
    }
}

/// Why a call through the gateway failed (as the downstream client sees it, in the JSON-RPC error).
enum GatewayError: Error, CustomStringConvertible, Sendable {
    case upstreamUnavailable(String, String)
    case upstreamFailed(String, String)
    case upstreamTimedOut(String, String, Duration)
    case unknownTool(String)
    case unknownResource(String)

    var description: String {
        switch self {
        case .upstreamUnavailable(let name, let reason): return "upstream \(name) unavailable: \(reason)"
        case .upstreamFailed(let name, let reason): return "upstream \(name) failed: \(reason)"
        case .upstreamTimedOut(let name, let what, let limit): return "upstream \(name) did not answer \(what) within \(limit)"
        case .unknownTool(let tool): return "unknown tool \(tool)"
        case .unknownResource(let uri): return "no upstream offers the resource \(uri)"
        }
    }
}

enum GatewayVersion {
    static let current = "0.1.0"
}
