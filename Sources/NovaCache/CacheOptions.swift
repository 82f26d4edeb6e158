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
