import Testing

import NovaServer

@Suite("Configuration")
struct ConfigStoreTests {
    @Test func defaults() {
        let config = ConfigStore()
        #expect(config.settings.port == 6379)
        #expect(config.settings.bind == ["127.0.0.1"])
        #expect(config.settings.databases == 16)
        #expect(config.value("dir")?.hasSuffix("/data") == true)
        #expect(config.value("save") == "3600 1 300 100 60 10000")
        #expect(config.value("client-output-buffer-limit") == "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60")
    }

    @Test func fileSyntaxAndFlagsOverride() throws {
        let config = ConfigStore()
        try config.load(text: """
            # comment
            port 7000
            maxmemory 100mb
            maxmemory-policy allkeys-lru
            save 900 1
            save 300 10
            requirepass "pass word"
            """)
        try config.load(flags: ["--port", "7001", "--loglevel", "warning"])
        #expect(config.settings.port == 7001)
        #expect(config.settings.maxMemory == 100 * 1024 * 1024)
        #expect(config.value("save") == "900 1 300 10")
        #expect(config.settings.requirePass == "pass word")
        #expect(config.settings.logLevel == "warning")
    }

    @Test func fileErrorsNameTheLine() {
        let config = ConfigStore()
        #expect(throws: ConfigFileError.self) { try config.load(text: "port 1\nbogus-directive 3\n") }
        do {
            try config.load(text: "port 1\nmaxmemory lots\n")
        } catch {
            #expect(error.line == 2)
            #expect(error.message == "argument must be a memory value")
        } 
    }

    @Test func everyRedisParameterIsAccepted() throws {
        let config = ConfigStore()
        // A sample of parameters with no effect in NovaCache: stored and echoed back.
        try config.set([("activedefrag", "yes"), ("repl-backlog-size", "2mb"), ("cluster-node-timeout", "5000")])
        #expect(config.value("activedefrag") == "yes")
        #expect(config.value("repl-backlog-size") == "2097152")
        #expect(config.get(["*"]).count >= 190)
    }

    @Test func globAndAliases() {
        let config = ConfigStore()
        let names = Set(config.get(["*max-*-entries*"]).map(\.0))
        #expect(names == ["hash-max-listpack-entries", "hash-max-ziplist-entries", "set-max-intset-entries", "zset-max-listpack-entries", "zset-max-ziplist-entries"])
        #expect(config.get(["MAXMEMORY"]).first?.0 == "MAXMEMORY")
    }

    @Test(arguments: [
        ("hz", "abc", "argument couldn't be parsed into an integer"),
        ("port", "70000", "argument must be between 0 and 65535 inclusive"),
        ("appendfsync", "sometimes", "argument(s) must be one of the following: everysec, always, no"),
        ("activerehashing", "maybe", "argument must be 'yes' or 'no'"),
        ("save", "3600", "Invalid save parameters"),
        ("notify-keyspace-events", "Q", "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
        ("client-output-buffer-limit", "foo 1 2 3", "Invalid client class specified in buffer limit configuration."),
        ("dbfilename", "x", "can't set protected config"),
    ])
    func setErrors(name: String, value: String, message: String) {
        let config = ConfigStore()
        #expect(throws: CommandError("ERR CONFIG SET failed (possibly related to argument '\(name)') - \(message)")) {
            try config.set([(name, value)])
        }
    }

    @Test func canonicalValues() throws {
        let config = ConfigStore()
        try config.set([("notify-keyspace-events", "Kx"), ("hz", "1000"), ("maxmemory-clients", "10%")])
        #expect(config.value("notify-keyspace-events") == "xK")
        #expect(config.value("hz") == "500")
        #expect(config.value("maxmemory-clients") == "10%")
        try config.set([("notify-keyspace-events", "KEA")])
        #expect(config.value("notify-keyspace-events") == "AKE")
    }

    @Test func setIsAllOrNothing() {
        let config = ConfigStore()
        #expect(throws: CommandError.self) { try config.set([("maxmemory", "1mb"), ("hz", "x")]) }
        #expect(config.value("maxmemory") == "0")
    }
}
