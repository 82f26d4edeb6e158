import Foundation
#if canImport(Glibc)
    import Glibc
#endif
public import Logging
public import MCP
public import NovaCache
public import NovaConnector

/// The connector cache as an MCP server: it offers the tools of its upstream MCP servers (renamed with
/// each upstream's prefix) and two of its own, and answers tool calls from NovaCache when the tool's policy
/// allows, calling the upstream on a miss (single flight, stale results on upstream failure, results with
/// `isError` never stored). Resources pass through to the upstream that listed them; progress
/// notifications come back to the caller that asked for them, and cancelling a call cancels it upstream.
public actor Gateway {
    public let configuration: GatewayConfiguration
    /// The cache manager results are kept in.
    public nonisolated let cache: CacheManager
    /// The caching layer (statistics per upstream tool).
    public nonisolated let connector: ConnectorCache
    private let logger: Logger
    private var upstreams: [String: Upstream] = [:]
    /// Downstream sessions, told when the tool or resource list changes.
    private var sessions: [ObjectIdentifier: Server] = [:]
    /// Progress tokens sent upstream → the session and token of the call that asked.
    private var progressRoutes: [String: (server: Server, token: ProgressToken)] = [:]
    private var nextProgressToken = 0

    /// The gateway's own tools.
    static let statsTool = "nova_cache_stats"
    static let invalidateTool = "nova_cache_invalidate"

    public init(configuration: GatewayConfiguration, logger: Logger = Logger(label: "nova.cache.mcp")) throws {
        self.configuration = configuration
        self.logger = logger
        var settings = CacheManager.Configuration(url: try RedisURL(configuration.cache.url), namespace: configuration.cache.namespace)
        settings.memory = MemoryTier.Configuration(maxEntries: configuration.cache.memoryEntries, maxBytes: max(64 << 20, configuration.cache.memoryEntries * 16 << 10))
        settings.maxStaleness = configuration.cache.maxStaleness
        settings.failSafeThrottle = .seconds(5)
        settings.metricsLabel = "mcp"
        cache = CacheManager(configuration: settings, logger: logger)
        connector = ConnectorCache(cache: cache, logger: logger)
    }

    /// Connects the upstreams (one that fails now is tried again on its first call) and waits for the
    /// cache server (the gateway answers from memory while it is away).
    public func start() async {
        for settings in configuration.upstreams {
            upstreams[settings.name] = Upstream(
                settings, logger: logger,
                listsChanged: { [weak self] _, announced in await self?.listsChanged(announced: announced) },
                progress: { [weak self] progress in await self?.forward(progress) }
            )
        }
        let status = await cache.waitUntilReady()
        if case .available = status {} else { logger.warning("cache server not ready; answering from memory meanwhile", metadata: ["status": "\(status)"]) }
        await withTaskGroup(of: Void.self) { group in
            for upstream in upstreams.values {
                group.addTask { [logger] in
                    do { _ = try await upstream.connected() } catch { logger.error("\(error)") }
                }
            }
        }
    }

    /// Ends every upstream connection and the cache manager (after flushing pending writes).
    public func shutdown() async {
        for upstream in upstreams.values { await upstream.shutdown() }
        _ = await cache.flush(timeout: .seconds(2))
        cache.shutdown()
    }

    // MARK: Sessions

    /// A server for one downstream session, its handlers bound to this gateway.
    public func makeServer() -> Server {
        let server = Server(
            name: "nova-cache-mcp", version: GatewayVersion.current,
            capabilities: .init(resources: .init(subscribe: false, listChanged: true), tools: .init(listChanged: true))
        )
        sessions[ObjectIdentifier(server)] = server
        return server
    }

    /// Registers the gateway's handlers on `server` (a separate step: registration is async on the actor).
    public nonisolated func bind(_ server: Server) async {
        await server.withMethodHandler(ListTools.self) { [weak self] _ in
            guard let self else { throw MCPError.internalError("gateway stopped") }
            return ListTools.Result(tools: await self.tools())
        }
        await server.withMethodHandler(CallTool.self) { [weak self, weak server] params in
            guard let self, let server else { throw MCPError.internalError("gateway stopped") }
            let caller = Server.currentHandlerContext?.httpContext.flatMap { $0.header(self.configuration.identity.header) }
            return try await self.call(params, caller: caller ?? self.stdioCaller(http: Server.currentHandlerContext?.httpContext != nil), server: server)
        }
        await server.withMethodHandler(ListResources.self) { [weak self] _ in
            guard let self else { throw MCPError.internalError("gateway stopped") }
            return ListResources.Result(resources: await self.resources())
        }
        await server.withMethodHandler(ReadResource.self) { [weak self] params in
            guard let self else { throw MCPError.internalError("gateway stopped") }
            return ReadResource.Result(contents: try await self.read(uri: params.uri))
        }
    }

    private nonisolated func stdioCaller(http: Bool) -> String? {
        http ? nil : configuration.identity.stdioCaller
    }

    /// The transport for a downstream client on this process's stdin and stdout: event-driven pipes, or
    /// the SDK's polling transport when stdin is not something SwiftNIO can watch (a regular file).
    public nonisolated func stdioTransport() -> any Transport {
        var status = stat()
        if fstat(STDIN_FILENO, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG { return StdioTransport(logger: logger) }
        return PipeTransport.standard(logger: logger)
    }

    /// Forgets a downstream session.
    public func remove(_ server: Server) {
        sessions[ObjectIdentifier(server)] = nil
        progressRoutes = progressRoutes.filter { $0.value.server !== server }
    }

    // MARK: Tools

    struct Route {
        let upstream: Upstream
        let tool: Tool
        let policy: ConnectorPolicy
    }

    /// The routing table, built from the upstreams' lists when first needed after they were read (not on
    /// every call), and the generation of the lists it was built from.
    private var routeTable: (table: [String: Route], generation: Int)?
    private var listGeneration = 0

    /// The exposed name of each upstream tool and how it is called and cached.
    private func routes() async -> [String: Route] {
        if let routeTable, routeTable.generation == listGeneration { return routeTable.table }
        let generation = listGeneration
        var routes: [String: Route] = [:]
        for settings in configuration.upstreams {
            guard let upstream = upstreams[settings.name] else { continue }
            for tool in await upstream.tools {
                let policy = GatewayConfiguration.policy(
                    name: tool.name, rule: settings.tools[tool.name], defaults: settings.defaults,
                    readOnly: tool.annotations.readOnlyHint == true, idempotent: tool.annotations.idempotentHint == true
                )
                routes[settings.prefix + tool.name] = Route(upstream: upstream, tool: tool, policy: policy)
            }
        }
        // Lists read again while this one was built (the awaits above) make it stale: not kept then.
        if generation == listGeneration { routeTable = (routes, generation) }
        return routes
    }

    /// The tools offered downstream: every upstream's (renamed), then the gateway's own.
    func tools() async -> [Tool] {
        let routes = await routes()
        var tools = routes.sorted { $0.key < $1.key }.map { name, route in
            Tool(
                name: name, title: route.tool.title, description: route.tool.description, inputSchema: route.tool.inputSchema,
                annotations: route.tool.annotations, outputSchema: route.tool.outputSchema, icons: route.tool.icons
            )
        }
        tools.append(Tool(
            name: Self.statsTool, title: "Connector cache statistics",
            description: "Calls, upstream calls avoided and upstream errors per tool, and the cache's hit counts and state.",
            inputSchema: .object(["type": "object", "properties": .object([:])]),
            annotations: .init(readOnlyHint: true, openWorldHint: false)
        ))
        tools.append(Tool(
            name: Self.invalidateTool, title: "Invalidate cached results",
            description: "Drops cached results of one tool (its name as listed here), of one upstream, or one key (as nova_cache_stats and nova-cache keys show it). Give exactly one of tool, upstream, key.",
            inputSchema: .object([
                "type": "object",
                "properties": .object([
                    "tool": .object(["type": "string"]), "upstream": .object(["type": "string"]), "key": .object(["type": "string"]),
                ]),
            ]),
            annotations: .init(destructiveHint: false, idempotentHint: true, openWorldHint: false)
        ))
        return tools
    }

    /// A tool call from a downstream session.
    func call(_ params: CallTool.Parameters, caller: String?, server: Server) async throws -> CallTool.Result {
        switch params.name {
        case Self.statsTool: return statistics()
        case Self.invalidateTool: return await invalidate(params.arguments ?? [:])
        default: break
        }
        guard let route = try await route(params.name) else { throw MCPError.invalidParams("unknown tool \(params.name)") }
        // Progress: the upstream gets a token of the gateway's, mapped back to the caller's.
        var meta = params._meta
        var routedToken: String?
        if let token = params._meta?.progressToken {
            nextProgressToken += 1
            let upstreamToken = "nova-\(nextProgressToken)"
            progressRoutes[upstreamToken] = (server, token)
            routedToken = upstreamToken
            meta?.progressToken = .string(upstreamToken)
        }
        defer { if let routedToken { progressRoutes[routedToken] = nil } }
        let upstream = route.upstream
        let toolName = route.tool.name
        let arguments = params.arguments
        do {
            return try await connector.call(
                source: upstream.configuration.name, operation: toolName, arguments: arguments ?? [:], caller: caller,
                policy: route.policy, as: CallTool.Result.self, cacheable: { $0.isError != true }
            ) { [meta] in
                try await upstream.call(tool: toolName, arguments: arguments, meta: meta)
            }
        } catch let error as GatewayError {
            throw MCPError.internalError(error.description)
        }
    }

    /// The route of an exposed tool name. A name no listed tool has, but with the prefix of an upstream
    /// that is not connected (it could not be reached when the gateway started), connects that upstream
    /// first: its tools are known after that, or the caller learns why it is unavailable.
    private func route(_ name: String) async throws -> Route? {
        if let route = await routes()[name] { return route }
        for settings in configuration.upstreams where name.hasPrefix(settings.prefix) {
            guard let upstream = upstreams[settings.name], await !upstream.isConnected else { continue }
            do {
                _ = try await upstream.connected()
            } catch let error as GatewayError {
                throw MCPError.internalError(error.description)
            }
        }
        return await routes()[name]
    }

    private func forward(_ progress: ProgressNotification.Parameters) async {
        guard case .string(let token) = progress.progressToken, let route = progressRoutes[token] else { return }
        let message = ProgressNotification.message(.init(progressToken: route.token, progress: progress.progress, total: progress.total, message: progress.message))
        try? await route.server.notify(message)
    }

    private func listsChanged(announced: Bool) async {
        listGeneration += 1
        if announced { await notifyListsChanged() }
    }

    private func notifyListsChanged() async {
        for server in sessions.values {
            try? await server.notify(ToolListChangedNotification.message())
            try? await server.notify(ResourceListChangedNotification.message())
        }
    }

    // MARK: The gateway's tools

    private func statistics() -> CallTool.Result {
        let stats = connector.statistics
        let cacheStats = cache.statistics
        var tools: [String: Value] = [:]
        for entry in stats.operations {
            let prefix = configuration.upstreams.first { $0.name == entry.source }?.prefix ?? ""
            tools[prefix + entry.operation] = .object([
                "upstream": .string(entry.source), "calls": .int(entry.counters.calls), "upstreamCalls": .int(entry.counters.upstreamCalls),
                "upstreamCallsAvoided": .int(entry.counters.upstreamCallsAvoided), "upstreamErrors": .int(entry.counters.upstreamErrors),
                "passedThroughUncached": .int(entry.counters.bypassed),
            ])
        }
        let total = stats.total
        let report: Value = .object([
            "tools": .object(tools),
            "total": .object([
                "calls": .int(total.calls), "upstreamCalls": .int(total.upstreamCalls), "upstreamCallsAvoided": .int(total.upstreamCallsAvoided),
                "upstreamErrors": .int(total.upstreamErrors),
            ]),
            "cache": .object([
                "remote": .string("\(cache.remoteStatus)"), "memoryHits": .int(cacheStats.memoryHits), "remoteHits": .int(cacheStats.remoteHits),
                "remoteMisses": .int(cacheStats.remoteMisses), "staleServed": .int(cacheStats.staleServed), "hitRatio": .double(cacheStats.hitRatio),
                "memoryEntries": .int(cache.memory.count),
            ]),
        ])
        let text = (try? String(decoding: JSONEncoder.sorted.encode(report), as: UTF8.self)) ?? "{}"
        // (The SDK's generic initialiser is chosen for a Value too; it only re-encodes it.)
        return (try? CallTool.Result(content: [.text(text: text, annotations: nil, _meta: nil)], structuredContent: report))
            ?? CallTool.Result(content: [.text(text: text, annotations: nil, _meta: nil)])
    }

    private func invalidate(_ arguments: [String: Value]) async -> CallTool.Result {
        let given = arguments.compactMapValues { $0.stringValue }
        guard given.count == 1, let (field, value) = given.first else {
            return CallTool.Result(content: [.text(text: "give exactly one of tool, upstream, key", annotations: nil, _meta: nil)], isError: true)
        }
        switch field {
        case "tool":
            guard let route = await routes()[value] else { return CallTool.Result(content: [.text(text: "unknown tool \(value)", annotations: nil, _meta: nil)], isError: true) }
            await connector.invalidate(source: route.upstream.configuration.name, operation: route.tool.name)
        case "upstream":
            guard upstreams[value] != nil else { return CallTool.Result(content: [.text(text: "unknown upstream \(value)", annotations: nil, _meta: nil)], isError: true) }
            await connector.invalidate(source: value)
        case "key":
            await connector.invalidate(key: value)
        default:
            return CallTool.Result(content: [.text(text: "unknown field \(field); give tool, upstream or key", annotations: nil, _meta: nil)], isError: true)
        }
        logger.info("invalidated", metadata: [field: "\(value)"])
        return CallTool.Result(content: [.text(text: "invalidated \(field) \(value)", annotations: nil, _meta: nil)])
    }

    // MARK: Resources

    func resources() async -> [Resource] {
        var all: [Resource] = []
        for settings in configuration.upstreams { if let upstream = upstreams[settings.name] { all += await upstream.resources } }
        return all
    }

    func read(uri: String) async throws -> [Resource.Content] {
        for settings in configuration.upstreams {
            guard let upstream = upstreams[settings.name], await upstream.resources.contains(where: { $0.uri == uri }) else { continue }
            do { return try await upstream.read(uri: uri) } catch let error as GatewayError { throw MCPError.internalError(error.description) }
        }
        throw MCPError.invalidParams(GatewayError.unknownResource(uri).description)
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
