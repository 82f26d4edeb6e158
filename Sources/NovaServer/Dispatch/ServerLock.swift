#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers

/// The server lock: one recursive mutex around all shared state, which the thread holding it can lend
/// while it runs a long script.
///
/// Redis answers other clients while a script runs past `busy-reply-threshold` (BUSY, or SCRIPT KILL and
/// SHUTDOWN NOSAVE). Here the script's thread holds the lock for the whole script, so two things make that
/// possible:
/// - the mutex is recursive, so the script's thread can serve its own event loop from the script's
///   instruction hook (`ServerCore.serveWhileBusy`), where commands take the lock again;
/// - once the holder `startLending`, a thread waiting for the lock hands its critical section over instead:
///   the holder runs it between two hook calls (`serveLent`), with the lock held, and the waiter goes on
///   with the result. When the holder `stopLending`, sections not run yet go back to waiting for the lock.
///
/// Uncontended, taking the lock costs one `trylock`.
final class ServerLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let lending = NIOLockedValueBox(Lending())

    /// A critical section handed over by a waiting thread.
    private final class Job: @unchecked Sendable {
        /// Dropped before the waiter resumes: the section only borrows the waiter's closure.
        private var body: (() -> Void)?
        private var ran = false
        private let condition = ConditionLock(value: false)

        init(_ body: @escaping () -> Void) { self.body = body }

        /// Called by the holder: runs the section (`ran`) or sends it back (`!ran`).
        func finish(ran: Bool) {
            if ran { perform() }
            body = nil
            condition.lock()
            self.ran = ran
            condition.unlock(withValue: true)
        }

        private func perform() {
            let body = self.body
            self.body = nil
            body?()
        }

        /// Called by the waiter: whether the holder ran the section.
        func wait() -> Bool {
            condition.lock(whenValue: true)
            defer { condition.unlock() }
            return ran
        }
    }

    private struct Lending {
        var active = false
        var jobs: [Job] = []
    }

    init() {
        mutex = .allocate(capacity: 1)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_RECURSIVE))
        pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the lock held. With `lendable`, while a busy script lends the lock, `body` runs on
    /// the script's thread instead (for the connection-serving paths: commands, accepts, closes); without,
    /// it waits for the mutex (the periodic task, persistence: nothing that may run inside a script).
    func withLock<R, E: Error>(lendable: Bool = false, _ body: () throws(E) -> R) throws(E) -> R {
        if pthread_mutex_trylock(mutex) != 0 {
            if !lendable {
                pthread_mutex_lock(mutex)
                defer { pthread_mutex_unlock(mutex) }
                return try body()
            }
            while !lockBriefly() {
                var result: Result<R, E>?
                let ran = withoutActuallyEscaping(body) { body -> Bool in
                    guard let job = enqueue({ result = Result(catching: body) }) else { return false }
                    return job.wait()
                }
                if ran, let result { return try result.get() }
            }
        }
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Runs `body` with the lock held when no other thread holds it, else returns nil without waiting
    /// (for work worth doing only at once: a prefetch).
    func withLockIfFree<R>(_ body: () -> R) -> R? {
        guard pthread_mutex_trylock(mutex) == 0 else { return nil }
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// Waits a little for the mutex; false when it is still held.
    private func lockBriefly() -> Bool {
        #if canImport(Glibc)
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        deadline.tv_nsec += 20_000_000
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_sec += 1
            deadline.tv_nsec -= 1_000_000_000
        }
        return pthread_mutex_timedlock(mutex, &deadline) == 0
        #else
        for _ in 0..<20 {
            if pthread_mutex_trylock(mutex) == 0 { return true }
            usleep(1000)
        }
        return false
        #endif
    }

    /// Queues a section for the holder; nil when the lock is not lent.
    private func enqueue(_ body: @escaping () -> Void) -> Job? {
        lending.withLockedValue { state -> Job? in
            guard state.active else { return nil }
            let job = Job(body)
            state.jobs.append(job)
            return job
        }
    }

    /// From now on waiting threads hand their sections to the holder (called with the lock held).
    func startLending() {
        lending.withLockedValue { $0.active = true }
    }

    /// Runs the sections handed over so far (called with the lock held).
    func serveLent() {
        let jobs = lending.withLockedValue { state -> [Job] in
            defer { state.jobs = [] }
            return state.jobs
        }
        for job in jobs { job.finish(ran: true) }
    }

    /// Stops lending; sections not run yet go back to waiting for the mutex (called with the lock held).
    func stopLending() {
        let jobs = lending.withLockedValue { state -> [Job] in
            state.active = false
            defer { state.jobs = [] }
            return state.jobs
        }
        for job in jobs { job.finish(ran: false) }
    }
}
