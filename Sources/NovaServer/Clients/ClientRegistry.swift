/// The connected clients by ID, and the IDs handed out (increasing from 1, never reused, as CLIENT ID
/// promises). Guarded by the server lock.
struct ClientRegistry {
    private var byID: [UInt64: ClientState] = [:]
    private var nextID: UInt64 = 1

    /// Connected clients (INFO `connected_clients`, `maxclients`).
    var count: Int { byID.count }
    /// Every connected client, in no particular order.
    var all: Dictionary<UInt64, ClientState>.Values { byID.values }

    /// The client with `id`, if it is still connected.
    subscript(id: UInt64) -> ClientState? { byID[id] }

    /// Adds the client `make` builds with the next ID.
    mutating func add(_ make: (UInt64) -> ClientState) -> ClientState {
        let client = make(nextID)
        precondition(client.id == nextID, "a client must take the ID it is given")
        nextID += 1
        byID[client.id] = client
        return client
    }

    /// Forgets a client (its connection closed).
    mutating func remove(_ client: ClientState) {
        byID.removeValue(forKey: client.id)
    }
}
