import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import NovaServer

@Suite(.timeLimit(.minutes(1))) struct ServerLockTests {
    @Test func theHolderCanTakeTheLockAgain() {
        let lock = ServerLock()
        let value = lock.withLock { lock.withLock { lock.withLock { 42 } } }
        #expect(value == 42)
    }

    @Test func aLendingHolderRunsTheSectionsOfWaitingThreads() async {
        let lock = ServerLock()
        let holderThread = NIOLockedValueBox<pthread_t?>(nil)
        let ranOn = NIOLockedValueBox<[Bool]>([])
        let waitersDone = NIOLockedValueBox(0)
        let release = ConditionLock(value: false)
        let holder = Foundation.Thread {
            lock.withLock {
                holderThread.withLockedValue { $0 = pthread_self() }
                lock.startLending()
                // Serve handed-over sections until both waiters got their answers.
                while waitersDone.withLockedValue({ $0 }) < 2 {
                    lock.serveLent()
                    usleep(1000)
                }
                lock.stopLending()
            }
            release.lock()
            release.unlock(withValue: true)
        }
        holder.start()
        while holderThread.withLockedValue({ $0 }) == nil { usleep(1000) }
        for _ in 0..<2 {
            Foundation.Thread {
                let answer: Int = lock.withLock(lendable: true) {
                    let holder = holderThread.withLockedValue { $0 }!
                    ranOn.withLockedValue { $0.append(pthread_equal(pthread_self(), holder) != 0) }
                    return 7
                }
                #expect(answer == 7)
                waitersDone.withLockedValue { $0 += 1 }
            }.start()
        }
        release.lock(whenValue: true)
        release.unlock()
        #expect(ranOn.withLockedValue { $0 } == [true, true])
    }

    /// Sections the holder does not serve (it stops lending first), and sections that may not be lent (the
    /// periodic task's), wait for the mutex.
    @Test(arguments: [true, false]) func sectionsNotServedWaitForTheMutex(lendable: Bool) async throws {
        let lock = ServerLock()
        let holding = ConditionLock(value: false)
        let finished = ConditionLock(value: false)
        let order = NIOLockedValueBox<[String]>([])
        let holder = Foundation.Thread {
            lock.withLock {
                lock.startLending()
                holding.lock()
                holding.unlock(withValue: true)
                usleep(100_000)  // the waiter tried the mutex for 20 ms and queued its section by now
                if !lendable { lock.serveLent() }  // serves nothing: that section waits for the mutex
                lock.stopLending()
                order.withLockedValue { $0.append("holder done") }
            }
        }
        holder.start()
        Foundation.Thread {
            holding.lock(whenValue: true)
            holding.unlock()
            lock.withLock(lendable: lendable) { order.withLockedValue { $0.append("waiter ran") } }
            finished.lock()
            finished.unlock(withValue: true)
        }.start()
        finished.lock(whenValue: true)
        finished.unlock()
        #expect(order.withLockedValue { $0 } == ["holder done", "waiter ran"])
    }

    /// `withLockIfFree` runs its section when no other thread holds the lock (the holder's own thread
    /// included: the mutex is recursive) and gives up at once, running nothing, while another does.
    @Test func aSectionIfFreeRunsOnlyWhenNoOtherThreadHoldsTheLock() {
        let lock = ServerLock()
        #expect(lock.withLockIfFree { 1 } == 1)
        #expect(lock.withLock { lock.withLockIfFree { 2 } } == 2)
        let holding = ConditionLock(value: 0)
        let holder = Foundation.Thread {
            lock.withLock {
                holding.lock()
                holding.unlock(withValue: 1)
                holding.lock(whenValue: 2)  // until the other thread has tried
                holding.unlock()
            }
            holding.lock()
            holding.unlock(withValue: 3)
        }
        holder.start()
        holding.lock(whenValue: 1)
        holding.unlock()
        let ran = NIOLockedValueBox(false)
        #expect(lock.withLockIfFree { ran.withLockedValue { $0 = true } } == nil)
        #expect(!ran.withLockedValue { $0 })
        holding.lock()
        holding.unlock(withValue: 2)
        holding.lock(whenValue: 3)
        holding.unlock()
        #expect(lock.withLockIfFree { 4 } == 4)
    }
}
