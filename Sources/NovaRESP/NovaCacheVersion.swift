/// The NovaCache release, for every executable (INFO, `--version`, snapshots' `redis-ver`).
public enum NovaCacheVersion {
    public static let current = "0.1.0"
    /// The Redis release whose behaviour (and RDB `redis-ver`) NovaCache follows.
    public static let redisCompatible = "7.0.15"
}
