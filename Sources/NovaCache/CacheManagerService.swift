public import ServiceLifecycle

/// A `CacheManager` runs in a swift-service-lifecycle `ServiceGroup` beside the application's other
/// services: on graceful shutdown it waits (up to `shutdownFlushTimeout`) for its writes in flight and the
/// replay of its outage journal, then closes its connections.
///
/// ```swift
/// let cache = try CacheManager(url: "redis://cache:6379/1", namespace: "crm")
/// let group = ServiceGroup(services: [server, cache], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
extension CacheManager: Service {
    public func run() async throws {
        defer { shutdown() }
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: no time to flush
        }
        let left = await flush(timeout: configuration.shutdownFlushTimeout)
        if left > 0 {
            logger.warning("shutting down with writes the remote never received", metadata: ["writes": "\(left)"])
        }
    }
}
