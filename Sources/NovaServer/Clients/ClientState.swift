package import NovaRESP
import NovaEngine
import OrderedCollections

/// The server-side state of one connection.
///
/// Created on accept and registered with the server; every field is read and written only while the
/// server lock is held (the connection handler and other clients' commands such as CLIENT KILL both go
/// through it), hence `@unchecked Sendable`.
package final class ClientState: @unchecked Sendable {
    /// CLIENT ID: unique, increasing.
    package let id: UInt64
    /// The connection, to close it from another client (CLIENT KILL) or at shutdown. Weak: the transport
    /// owns the connection, the connection owns its session and the session this state; a strong
    /// reference back would keep every closed connection's buffers alive. (The epoll transport's control
    /// is a handle the connection owns, so that the connection, retained on every command's path, is
    /// never weakly referenced itself.)
    package weak let connection: (any ConnectionControl)?
    /// `ip:port` of the peer.
    package let address: String
    /// `ip:port` of our end.
    package let localAddress: String
    /// When the connection was accepted (Unix ms).
    package let createdAt: Int64

    /// CLIENT SETNAME.
    package var name: String?
    /// CLIENT SETINFO lib-name / lib-ver.
    package var libraryName: String?
    package var libraryVersion: String?
    /// The selected database.
    package var database = 0
    /// Whether the client may run commands that need authentication.
    package var isAuthenticated: Bool
    /// The ACL user the connection runs as.
    var aclUser: ACLUser
    /// Its name (CLIENT LIST `user=`).
    package var user: String { aclUser.name }
    /// RESP2 or RESP3 (HELLO).
    package var protocolVersion: RESPVersion = .v2
    /// Last time a command arrived (Unix ms).
    package var lastInteraction: Int64
    /// The last command run, for CLIENT LIST. Specs live as long as the server's command table, so the
    /// reference is not counted (setting it is on every command's path).
    unowned(unsafe) var lastCommandSpec: CommandSpec? = nil
    /// The full name of the last command run (`client|list`), or `NULL`.
    package var lastCommand: String { lastCommandSpec?.fullName ?? "NULL" }
    /// The pseudo-client replaying the append-only file: never logged again, never refused for loading.
    package var isReplaying = false
    /// Waiting in a blocking command (BLPOP …).
    package var isBlocked = false
    /// The commands queued since MULTI; nil outside a transaction. Kept while EXEC runs them.
    var transaction: Transaction?
    /// Between MULTI and the end of EXEC / DISCARD: blocking commands do not block.
    package var inTransaction: Bool { transaction != nil }
    /// WATCHed keys, each with whether it had already expired when watched.
    var watchedKeys: [DatabaseKey: Bool] = [:]
    /// A watched key changed: the next EXEC fails (Redis's CLIENT_DIRTY_CAS).
    var watchInvalidated = false
    /// CLIENT TRACKING settings; nil when tracking is off.
    var tracking: TrackingState?
    /// SUBSCRIBE channels and PSUBSCRIBE patterns, in subscription order.
    var channels: OrderedSet<Bytes> = []
    var patterns: OrderedSet<Bytes> = []
    /// SSUBSCRIBE shard channels, in subscription order.
    var shardChannels: OrderedSet<Bytes> = []
    /// CLIENT LIST / CLIENT KILL TYPE and the output-buffer class: `pubsub` or `normal` (no replicas here).
    var clientType: String { isSubscriber ? "pubsub" : "normal" }
    /// Subscribed to anything: in RESP2 only the subscribe family, PING, QUIT and RESET may run.
    var isSubscriber: Bool { !channels.isEmpty || !patterns.isEmpty || !shardChannels.isEmpty }
    /// Stopped by CLIENT PAUSE before running its current command (also `isBlocked`).
    var isPostponed = false
    /// Receives every command other clients run (MONITOR).
    var isMonitor = false
    /// CLIENT NO-EVICT.
    package var noEvict = false
    /// CLIENT NO-TOUCH: reads do not update access clocks.
    package var noTouch = false
    /// CLIENT REPLY: replies are sent (`on`), dropped (`off`), or dropped for the current command only
    /// (`skip`); `skipNext` is set by CLIENT REPLY SKIP for the command after it. Pushed frames (Pub/Sub
    /// messages, invalidations) are sent regardless, as in Redis.
    enum ReplyMode { case on, off, skip }
    var replyMode = ReplyMode.on
    var replySkipNext = false
    /// Close once the replies written so far are flushed (QUIT, protocol error, CLIENT KILL of self).
    package var closeAfterReply = false
    /// The connection's buffers as its session last reported them (CLIENT LIST `qbuf`, `qbuf-free`,
    /// `rbs`, `rbp`, `omem`); updated under the lock at the start and end of each batch.
    package var buffers = ClientBuffers()
    /// Bytes waiting in the query buffer (CLIENT LIST `qbuf`).
    package var queryBufferBytes: Int { buffers.queryBuffer }
    /// Bytes of replies not yet written to the socket (CLIENT LIST `omem`).
    package var pendingOutputBytes: Int { buffers.pendingOutput }

    init(
        id: UInt64, connection: (any ConnectionControl)?, address: String, localAddress: String, now: Int64,
        user: ACLUser
    ) {
        self.id = id
        self.connection = connection
        self.address = address
        self.localAddress = localAddress
        self.createdAt = now
        self.lastInteraction = now
        self.aclUser = user
        // Like Redis: a connection starts authenticated when the default user needs no password.
        self.isAuthenticated = user.noPassword && user.enabled
    }

    /// Returns the connection to its state right after connecting (RESET), authentication aside.
    func reset(defaultUser: ACLUser) {
        database = 0
        protocolVersion = .v2
        name = nil
        noEvict = false
        noTouch = false
        aclUser = defaultUser
        isAuthenticated = defaultUser.noPassword && defaultUser.enabled
    }

    /// The CLIENT LIST / CLIENT INFO line for this client (no trailing newline).
    ///
    /// `argumentBytes` is what the client's current command holds (the caller's own CLIENT LIST or
    /// INFO, or a blocked command's arguments); 0 between commands, as in Redis.
    func infoLine(now: Int64, argumentBytes: Int = 0) -> String {
        // Letters in Redis's order.
        var flags = ""
        if isMonitor { flags += "O" }
        if isSubscriber { flags += "P" }
        if inTransaction { flags += "x" }
        if isBlocked { flags += "b" }
        if tracking != nil { flags += "t" }
        if tracking?.brokenRedirect == true { flags += "R" }
        if tracking?.broadcast == true { flags += "B" }
        if watchInvalidated { flags += "d" }
        if closeAfterReply { flags += "c" }
        if noEvict { flags += "e" }
        if noTouch { flags += "T" }
        if flags.isEmpty { flags = "N" }
        let age = max(0, (now - createdAt) / 1000)
        let idle = max(0, (now - lastInteraction) / 1000)
        var line = "id=\(id) addr=\(address) laddr=\(localAddress) fd=-1 name=\(name ?? "") age=\(age) idle=\(idle)"
        line += " flags=\(flags) db=\(database) sub=\(channels.count) psub=\(patterns.count) ssub=\(shardChannels.count) multi=\(transaction?.commands.count ?? -1)"
        let queued = transaction?.commands.reduce(0) { total, command in command.arguments.reduce(total) { $0 + $1.readableBytes } } ?? 0
        let totalMemory = ClientBuffers.objectBytes(self) + buffers.readBufferSize + argumentBytes + queued + buffers.pendingOutput
        line += " qbuf=\(buffers.queryBuffer) qbuf-free=\(buffers.queryBufferFree) argv-mem=\(argumentBytes) multi-mem=\(queued)"
        line += " rbs=\(buffers.readBufferSize) rbp=\(buffers.readBufferPeak) obl=0 oll=0 omem=\(buffers.pendingOutput) tot-mem=\(totalMemory)"
        line += " events=r cmd=\(lastCommand) user=\(user) redir=\(tracking.map { $0.redirect == 0 ? -1 : Int64($0.redirect) } ?? -1) resp=\(protocolVersion.rawValue)"
        line += " lib-name=\(libraryName ?? "") lib-ver=\(libraryVersion ?? "")"
        return line
    }
}

/// A connection's buffers as its session reports them to the server (CLIENT LIST, INFO clients).
package struct ClientBuffers: Sendable {
    /// Bytes received and not yet run: unparsed input plus the part of the decoded batch still to run.
    package var queryBuffer = 0
    /// Room left in the input buffer before it must grow.
    package var queryBufferFree = 0
    /// The input buffer's capacity, and the most it held at once.
    package var readBufferSize = 0
    package var readBufferPeak = 0
    /// Replies produced and not yet written to the socket.
    package var pendingOutput = 0

    package init() {}

    /// The heap bytes of a client's state object, as the allocator sized it.
    static func objectBytes(_ client: ClientState) -> Int {
        ProcessMemory.allocationSize(Unmanaged.passUnretained(client).toOpaque())
    }
}
