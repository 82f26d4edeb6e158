import Synchronization

/// Per-call choices of tier, for the calls that need to bypass one (FusionCache's SkipMemoryCache and
/// SkipDistributedCache).
public struct CacheCallOptions: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Neither read nor fill the memory tier (a value that must come from the remote or the loader).
    public static let skipMemory = CacheCallOptions(rawValue: 1 << 0)
    /// Neither read nor write the remote (a value private to this process).
    public static let skipRemote = CacheCallOptions(rawValue: 1 << 1)
}

/// Errors of the cache itself (a loader's own errors are thrown as they are).
public enum CacheError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `getOrLoad`'s loader did not finish within `loaderHardTimeout` and there was no stale value to
    /// serve instead; the loader keeps running and stores its value when it ends.
    case loaderTimedOut(key: String, after: Duration)

    public var description: String {
        switch self {
        case .loaderTimedOut(let key, let after): return "loader for \(key) did not finish within \(after)"
        }
    }
}

/// The result of `task` if it ends within `timeout`, else nil (the task keeps running).
func result<R: Sendable>(of task: Task<R, any Error>, within timeout: Duration) async throws -> R? {
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

/// This process's tagged memory entries (tag → keys), so that `invalidate(tag:)` empties the memory tier
/// even while the remote, which holds the shared index, is away. Bounded: past `limit` keys in all, the
/// largest tag's list is dropped (its entries then leave memory only through the remote's invalidations
/// or their TTL).
final class LocalTagIndex: Sendable {
    private let keys = Mutex<(byTag: [String: Set<String>], count: Int)>(([:], 0))
    private let limit: Int

    init(limit: Int) { self.limit = max(1, limit) }

    func add(_ key: String, to tags: Set<String>) {
        keys.withLock { state in
            for tag in tags where state.byTag[tag, default: []].insert(key).inserted { state.count += 1 }
            while state.count > limit, let largest = state.byTag.max(by: { $0.value.count < $1.value.count }) {
                state.count -= largest.value.count
                state.byTag[largest.key] = nil
            }
        }
    }

    /// The keys tagged `tag`, forgotten.
    func remove(_ tag: String) -> Set<String> {
        keys.withLock { state in
            let removed = state.byTag.removeValue(forKey: tag) ?? []
            state.count -= removed.count
            return removed
        }
    }
}
