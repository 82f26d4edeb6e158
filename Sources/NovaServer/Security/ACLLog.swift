import NIOCore
import NovaRESP

/// ACL LOG: recent refusals, newest first, with repeats within a minute merged into one entry.
struct ACLLog: Sendable {
    struct Entry: Sendable {
        var count: Int
        let reason: ACLDenialReason
        let context: String
        let object: [UInt8]
        let username: String
        var createdAt: Int64
        var clientInfo: String
        /// The client `clientInfo` describes and when it was taken.
        var clientID: UInt64
        var clientInfoTime: Int64
    }

    private(set) var entries: [Entry] = []

    /// Records a refusal. `clientInfo` (a CLIENT LIST line, costly to build) is taken for a new entry,
    /// and for a repeat only when another client or at least a second has passed: a password-guessing
    /// client must not make each refusal expensive for everyone else.
    mutating func add(
        reason: ACLDenialReason, context: String, object: [UInt8], username: String, clientID: UInt64,
        clientInfo: () -> String, now: Int64, maxLength: Int
    ) {
        if let index = entries.firstIndex(where: {
            $0.reason == reason && $0.context == context && $0.object == object && $0.username == username
                && now - $0.createdAt <= 60_000
        }) {
            var entry = entries.remove(at: index)
            entry.count += 1
            entry.createdAt = now
            if entry.clientID != clientID || now - entry.clientInfoTime >= 1000 {
                entry.clientInfo = clientInfo()
                entry.clientID = clientID
                entry.clientInfoTime = now
            }
            entries.insert(entry, at: 0)
        } else {
            entries.insert(Entry(count: 1, reason: reason, context: context, object: object, username: username,
                                 createdAt: now, clientInfo: clientInfo(), clientID: clientID, clientInfoTime: now), at: 0)
        }
        if entries.count > maxLength { entries.removeLast(entries.count - maxLength) }
    }

    mutating func reset() { entries = [] }
}
