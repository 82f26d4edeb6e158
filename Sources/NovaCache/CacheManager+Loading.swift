import Logging
import NovaClient
import NovaRESP
import Synchronization

/// `getOrLoad`'s machinery: the loader under its timeouts, fail-safe, eager refresh.
extension CacheManager {
    /// Runs `loader` for `full` within the configured timeouts, storing its value; serves the stale memory
    /// copy when the loader fails or is too slow.
    func load<T: Codable & Sendable>(
        _ full: String, policy: CachePolicy, tags: Set<String>, options: CacheCallOptions, loader: @escaping @Sendable () async throws -> T
    ) async throws -> [UInt8] {
        stats.record(.loaderCall)
        let stale = staleValue(full, policy: policy, options: options)
        let loading = Task { [self] () async throws -> [UInt8] in
            let value = try await loader()
            let payload = try configuration.codec.encode(value)
            await store(full, payload, policy: policy, options: options, tags: tags, decoded: DecodedBox(value))
            return payload
        }
        let soft = stale == nil ? nil : configuration.loaderSoftTimeout
        let hard = configuration.loaderHardTimeout
        do {
            guard let limit = [soft, hard].compactMap({ $0 }).min() else { return try await loading.value }
            if let payload = try await result(of: loading, within: limit) { return payload }
            if let remaining = hard.map({ $0 - limit }), remaining > .zero, stale == nil || soft == nil,
                let payload = try await result(of: loading, within: remaining) {
                return payload
            }
            // Too slow: the loader finishes in the background and stores its value then.
            Task { [logger] in
                if case .failure(let error) = await loading.result {
                    logger.warning("timed-out loader failed", metadata: ["key": "\(full)", "error": "\(error)"])
                }
            }
            guard let stale else { throw CacheError.loaderTimedOut(key: full, after: hard ?? limit) }
            logger.debug("loader slow; serving the stale value while it finishes", metadata: ["key": "\(full)"])
            stats.record(.staleServed)
            return stale.payload
        } catch let error as CacheError {
            throw error
        } catch {
            stats.record(.loaderFailure)
            if let stale = staleValue(full, policy: policy, options: options) {
                let current = now
                let age = current - stale.freshUntil
                // Fail-safe throttle: the stale value stands in as fresh for a while, so that the
                // failing loader (and this warning) runs once per key per period, not per call.
                let throttle = configuration.failSafeThrottle.wholeMilliseconds
                if throttle > 0 { memory.extendFreshness(full, until: current + throttle) }
                logger.warning("loader failed; serving a stale value", metadata: [
                    "key": "\(full)", "staleForMs": "\(max(0, age))", "error": "\(error)",
                    "retryInMs": "\(throttle)",
                ])
                stats.record(.staleServed)
                return stale.payload
            }
            throw error
        }
    }

    /// The memory copy of `full` that may stand in for a failed or slow load: fresh, or stale for no longer
    /// than the policy's window (the manager's `maxStaleness` unless the policy sets one).
    func staleValue(_ full: String, policy: CachePolicy, options: CacheCallOptions) -> MemoryTier.Record? {
        guard !options.contains(.skipMemory), let record = memory.lookup(full) else { return nil }
        // Measured from the value's own expiry: the fail-safe throttle moves `freshUntil`, not `expiresAt`.
        guard let window = policy.maxStaleness, record.expiresAt != 0 else { return record }
        return now - record.expiresAt <= window.wholeMilliseconds ? record : nil
    }

    /// Starts a background reload of `full`, written at `writtenAt` and expiring at `expiresAt`, once it is
    /// past `threshold` of that life (one at a time:
    /// it runs as the key's single flight).
    func refreshEagerly<T: Codable & Sendable>(
        _ full: String, writtenAt: Int64, expiresAt: Int64, sliding: Int64, threshold: Double, policy: CachePolicy, tags: Set<String>,
        options: CacheCallOptions, loader: @escaping @Sendable () async throws -> T
    ) {
        guard writtenAt > 0, expiresAt > writtenAt, sliding == 0 else { return }
        let due = writtenAt + Int64(Double(expiresAt - writtenAt) * threshold)
        guard now >= due, !flights.isRunning(full) else { return }
        stats.record(.eagerRefresh)
        Task { [self] in
            _ = try? await flights.run(full) { [self] in
                // Another refresh may have stored a newer value meanwhile.
                if let current = memory.lookup(full), current.writtenAt > writtenAt { return current.payload }
                return try await load(full, policy: policy, tags: tags, options: options, loader: loader)
            }
        }
    }
}

/// The result of `task` if it ends within `timeout`, else nil (the task keeps running). Unlike a task
/// group racing a timer, it returns at the deadline even when the task ignores cancellation. Shared with
/// the package's other modules (the MCP gateway's upstream deadlines).
package func result<R: Sendable>(of task: Task<R, any Error>, within timeout: Duration) async throws -> R? {
    let waiter = OneShot<Result<R, any Error>?>()
    let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<R, any Error>?, Never>) in
        waiter.arm(continuation)
        Task { waiter.resume(returning: await task.result) }
        Task {
            try? await Task.sleep(for: timeout)
            waiter.resume(returning: nil)
        }
    }
    return try outcome?.get()
}

/// A continuation resumed by whichever of several racers comes first.
private final class OneShot<Value: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<Value, Never>?>(nil)

    func arm(_ continuation: CheckedContinuation<Value, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    func resume(returning value: Value) {
        continuation.withLock { $0.take() }?.resume(returning: value)
    }
}
