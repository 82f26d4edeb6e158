// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    // Exclusivity is enforced statically; the dynamic checks cost ~6% of a GET (perf, docs/performance.md).
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "NovaCache",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "nova-cache-server", targets: ["nova-cache-server"]),
        .library(name: "NovaRESP", targets: ["NovaRESP"]),
        .library(name: "NovaClient", targets: ["NovaClient"]),
        .library(name: "NovaCache", targets: ["NovaCache"]),
        .library(name: "NovaConnector", targets: ["NovaConnector"]),
        .library(name: "NovaCacheMCP", targets: ["NovaCacheMCP"]),
        .executable(name: "nova-cache-mcp", targets: ["nova-cache-mcp"]),
        .executable(name: "nova-cache-demo", targets: ["nova-cache-demo"]),
        .executable(name: "nova-cache-bench", targets: ["nova-cache-bench"]),
        .executable(name: "nova-server-bench", targets: ["nova-server-bench"]),
        .executable(name: "nova-cache", targets: ["nova-cache"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(
            name: "NovaRESP",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        .target(
            name: "NovaEngine",
            dependencies: [
                "NovaRESP",
                "CNovaSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: strict
        ),
        .target(name: "CNovaSystem"),
        .systemLibrary(
            name: "CLua", pkgConfig: "lua5.1",
            providers: [.apt(["liblua5.1-0-dev", "lua-cjson-dev", "lua-bitop-dev"])]
        ),
        .target(name: "CLuaShim", dependencies: ["CLua"]),
        .target(
            name: "NovaScripting",
            dependencies: [
                "CLuaShim", "NovaRESP", "NovaEngine",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "NovaObservability",
            dependencies: [
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "NovaServer",
            dependencies: [
                "NovaRESP", "NovaEngine", "CNovaSystem", "NovaScripting", "NovaObservability",
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "nova-cache-server",
            dependencies: [
                "NovaServer", "NovaRESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "NovaClient",
            dependencies: [
                "NovaRESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "NovaCache",
            dependencies: [
                "NovaClient", "NovaEngine", "NovaRESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "NovaConnector",
            dependencies: ["NovaCache", "NovaEngine", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .target(
            name: "NovaCacheMCP",
            dependencies: [
                "NovaConnector", "NovaCache", "NovaClient",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "nova-cache-mcp",
            dependencies: [
                "NovaCacheMCP",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "nova-cache-demo",
            dependencies: ["NovaCache", "NovaClient", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "nova-cache-bench",
            dependencies: ["NovaCache", "NovaClient", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "nova-server-bench",
            dependencies: [
                "NovaServer", "NovaRESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "nova-cache",
            dependencies: [
                "NovaClient", "NovaEngine", "NovaRESP", "NovaObservability",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "NovaRESPTests", dependencies: ["NovaRESP"], swiftSettings: strict),
        .testTarget(name: "NovaEngineTests", dependencies: ["NovaEngine"], swiftSettings: strict),
        .testTarget(name: "NovaObservabilityTests", dependencies: ["NovaObservability"], swiftSettings: strict),
        .testTarget(
            name: "NovaServerTests",
            dependencies: [
                "NovaServer", "NovaRESP", "NovaEngine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "NovaTestSupport",
            dependencies: ["NovaClient"],
            path: "Tests/NovaTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "NovaClientTests",
            dependencies: [
                "NovaClient", "NovaRESP", "NovaTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "NovaConnectorTests",
            dependencies: ["NovaConnector", "NovaCache", "NovaTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "NovaScriptingTests",
            dependencies: ["NovaScripting", "NovaRESP", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "NovaCacheMCPTests",
            dependencies: [
                "NovaCacheMCP", "NovaConnector", "NovaTestSupport",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "NovaCacheTests",
            dependencies: [
                "NovaCache", "NovaClient", "NovaRESP", "NovaTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
    ]
)
