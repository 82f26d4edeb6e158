import NIOConcurrencyHelpers
import NIOPosix
import NovaEngine

/// Lazy freeing (UNLINK, FLUSHALL/FLUSHDB ASYNC, `lazyfree-lazy-*`): big values and whole databases are
/// handed by the engine to one background thread and freed there, so that the command that removed them
/// answers at once. INFO memory counts what is pending and what was freed.
final class LazyFreer: Sendable {
    /// The process's freeing thread, started on first use.
    static let shared = LazyFreer()

    private let pool: NIOThreadPool
    private let counters = NIOLockedValueBox((pending: 0, freed: 0))

    init() {
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    /// Frees `data` on the background thread.
    func release(_ data: ReleasedData) {
        let objects = data.objects
        counters.withLockedValue { $0.pending += objects }
        pool.submit { [counters] _ in
            // The work item holds the last reference: it is dropped here, on the pool's thread.
            withExtendedLifetime(data) {}
            counters.withLockedValue {
                $0.pending -= objects
                $0.freed += objects
            }
        }
    }

    /// INFO `lazyfree_pending_objects` and `lazyfreed_objects`.
    var statistics: (pending: Int, freed: Int) { counters.withLockedValue { $0 } }

    /// Forgets `lazyfreed_objects` (CONFIG RESETSTAT).
    func resetStatistics() { counters.withLockedValue { $0.freed = 0 } }
}
