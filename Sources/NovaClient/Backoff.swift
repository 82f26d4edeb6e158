/// Exponential backoff with full jitter: attempt n waits a random time in [base·2ⁿ/2, base·2ⁿ], capped.
public struct Backoff: Sendable, Hashable {
    public var base: Duration
    public var maximum: Duration

    public init(base: Duration = .milliseconds(100), maximum: Duration = .seconds(10)) {
        self.base = base
        self.maximum = maximum
    }

    /// The wait after `failures` consecutive failures (1 for the first).
    public func delay(afterFailures failures: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        guard failures > 0 else { return .zero }
        let exponent = min(failures - 1, 30)
        let ceiling = min(Double(base.nanoseconds) * Double(1 << exponent), Double(maximum.nanoseconds))
        let nanoseconds = Double.random(in: ceiling / 2...ceiling, using: &generator)
        return .nanoseconds(Int64(nanoseconds))
    }

    /// The wait after `failures` consecutive failures, with the system's random numbers.
    public func delay(afterFailures failures: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(afterFailures: failures, using: &generator)
    }
}
