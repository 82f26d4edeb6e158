#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOCore
import NovaRESP
import NovaServer
import ServiceLifecycle

let usage = """
    Usage: nova-cache-server [/path/to/nova.conf] [options]
           nova-cache-server --check-config /path/to/nova.conf
           nova-cache-server --install-service [--root DIR] [--user NAME] [--bin-dir DIR]
           nova-cache-server -v or --version
           nova-cache-server -h or --help

    Options are redis.conf directives written as flags, e.g.
           nova-cache-server --port 7000 --requirepass secret --dir /var/lib/nova-cache
           nova-cache-server ./nova.conf --loglevel verbose

    With no configuration at all the server listens on 127.0.0.1:6379 and keeps its data in ./data.
    """

func fail(_ message: String) -> Never {
    let text = message + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

var arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "-v" || arguments.first == "--version" {
    print("NovaCache server v=\(NovaCacheVersion.current) (Redis protocol of \(NovaCacheVersion.redisCompatible))")
    exit(0)
}
if arguments.first == "-h" || arguments.first == "--help" {
    print(usage)
    exit(0)
}

if arguments.first == "--install-service" {
    var layout = ServiceInstall.Layout()
    var rest = arguments.dropFirst()
    while let option = rest.popFirst() {
        guard let value = rest.popFirst() else { fail(usage) }
        switch option {
        case "--root": layout.root = value
        case "--user": layout.user = value
        case "--bin-dir": layout.binDirectory = value
        default: fail(usage)
        }
    }
    do {
        for line in try ServiceInstall.install(layout) { print(line) }
        // The binaries beside this one (the build directory when run from a checkout), so that the lines
        // work when pasted.
        let here = ServiceInstall.executableDirectory()
        print("""
            Next, as root:
              install -m 755 \(here)/nova-cache-server \(here)/nova-cache \(layout.binDirectory)/
              \(layout.binDirectory)/nova-cache-server --check-config \(layout.configPath)
              systemctl daemon-reload && systemctl enable --now nova-cache nova-cache-backup.timer
              \(layout.binDirectory)/nova-cache status
            """)
        exit(0)
    } catch {
        fail("\(error)")
    }
}

let config = ConfigStore()
if arguments.first == "--check-config" {
    guard arguments.count == 2 else { fail(usage) }
    do {
        try config.loadFile(arguments[1])
        try config.checkLoaded()
        if let problem = ServerCore(config: config, logger: Logger(label: "check-config")).loadUsersAtStartup() {
            fail(problem.hasPrefix("*** FATAL") ? problem : "\(arguments[1]): \(problem)")
        }
        for warning in config.settingsWithoutEffect() {
            let text = "Warning: \(warning)\n"
            _ = text.withCString { write(2, $0, strlen($0)) }
        }
        print("Configuration file \(arguments[1]) is valid.")
        exit(0)
    } catch {
        fail("\(error)")
    }
}

do {
    if let first = arguments.first, !first.hasPrefix("--") {
        let path = first == "-" ? "/dev/stdin" : first
        config.configFilePath = path == "/dev/stdin" ? nil : ConfigStore.absolute(path)
        try config.loadFile(path)
        arguments.removeFirst()
    }
    try config.load(flags: arguments)
    try config.checkLoaded()
} catch {
    fail("\(error)")
}

// The default data directory is created on first start; an explicit `dir` must exist, as for redis-server.
if config.value("dir") == ConfigStore.defaultDataDirectory {
    mkdir(ConfigStore.defaultDataDirectory, 0o700)
}

ServerProcess.configureAllocator()
let settings = config.settings
// Like redis-server: ps shows "nova-cache-server host:port", never the flags (which may hold a password).
let titleHost = settings.bind.first.map { $0.hasPrefix("-") ? String($0.dropFirst()) : $0 } ?? "127.0.0.1"
ServerProcess.setTitle("nova-cache-server \(titleHost):\(settings.port)")
let level = ServerLogHandler.level(forRedisLevel: settings.logLevel)
let logFile = config.value("logfile")
let logFormat = ServerLogHandler.Format(rawValue: config.value("log-format") ?? "") ?? .legacy
LoggingSystem.bootstrap { _ in ServerLogHandler(level: level, path: logFile, format: logFormat) }
let logger = Logger(label: "nova-cache-server")
logger.notice("NovaCache server starting", metadata: [
    "version": "\(NovaCacheVersion.current)", "pid": "\(getpid())", "config": "\(config.configFilePath ?? "none")",
])
for warning in config.settingsWithoutEffect() { logger.warning("\(warning)") }

// Event-loop threads: `io-threads` when configured, else half the cores (at least one); the other cores
// serve the clients on the same machine and the background threads. Measurements: docs/execution-model.md.
let threads = config.isExplicitlySet("io-threads") ? settings.ioThreads : max(1, System.coreCount / 2)
config.recordEffective("io-threads", String(threads))
// NOVA_TRANSPORT=nio selects the SwiftNIO transport on Linux (for comparisons); epoll is the default there.
let transport: NovaCacheServer.TransportKind? = getenv("NOVA_TRANSPORT").map { String(cString: $0) == "nio" ? .nio : .epoll }
let server = NovaCacheServer(config: config, logger: logger, threads: threads, transport: transport)
do {
    try await server.start()
} catch {
    fail("Could not start the server: \(error)")
}
// SHUTDOWN ends the server's run(); that is a normal end of the group, not a failure.
let group = ServiceGroup(
    configuration: .init(
        services: [.init(service: server, successTerminationBehavior: .gracefullyShutdownGroup)],
        gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
do {
    try await group.run()
} catch {
    logger.error("Server stopped with an error: \(error)")
    exit(1)
}
