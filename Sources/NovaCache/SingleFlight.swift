import Synchronization

/// Runs one load per key at a time: callers that arrive while a load runs wait for its result instead of
/// starting their own.
final class SingleFlight<Result: Sendable>: Sendable {
    private struct Flight: Sendable {
        let id: UInt64
        let task: Task<Result, any Error>
    }

    private let flights = Mutex<(next: UInt64, byKey: [String: Flight])>((0, [:]))

    /// The result of the running load for `key`, or of a new one running `body`.
    func run(_ key: String, _ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
        let flight = flights.withLock { state -> Flight in
            if let running = state.byKey[key] { return running }
            state.next += 1
            let flight = Flight(id: state.next, task: Task { try await body() })
            state.byKey[key] = flight
            return flight
        }
        let outcome = await flight.task.result
        flights.withLock { state in
            if state.byKey[key]?.id == flight.id { state.byKey[key] = nil }
        }
        return try outcome.get()
    }

    /// Whether a load for `key` runs now.
    func isRunning(_ key: String) -> Bool { flights.withLock { $0.byKey[key] != nil } }

    /// Loads running now.
    var running: Int { flights.withLock { $0.byKey.count } }
}
