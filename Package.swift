// swift-tools-version:6.2
import PackageDescription

let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    // An extension member is usable only where its module is imported: a leaked re-export fails the build.
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "locklock",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Redlock", targets: ["Redlock"]),
        .library(name: "LocklockServer", targets: ["LocklockServer"]),
        .library(name: "HummingbirdIdempotency", targets: ["HummingbirdIdempotency"]),
        .executable(name: "locklock", targets: ["locklock"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
    ],
    targets: [
        // MARK: The library
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .target(
            name: "RedisWire",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "Redlock",
            dependencies: [
                "RedisWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: The HTTP adapter, the middleware and the command-line tool
        .target(
            name: "LocklockServer",
            dependencies: [
                "Redlock", "RedisWire", "ProblemDetails",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            // Compiled into the binary, so that `locklock` stays one file with no resource bundle.
            resources: [.embedInCode("openapi.json")],
            swiftSettings: strictSwift
        ),
        .target(
            name: "HummingbirdIdempotency",
            dependencies: [
                "Redlock", "RedisWire", "ProblemDetails",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        // RFC 9457 problem responses, shared by the REST adapter and the middleware.
        .target(
            name: "ProblemDetails",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        // Local redis-server processes and child processes: `locklock dev`, `locklock run`, the tests and the chaos suite.
        .target(name: "LocalRedis", dependencies: ["RedisWire"], swiftSettings: strictSwift),
        // Spawns the command of `locklock run` in a process group of its own that dies with `run`.
        .target(name: "CSupervisedSpawn"),
        .executableTarget(
            name: "locklock",
            dependencies: [
                "LocklockServer", "Redlock", "RedisWire", "LocalRedis", "CSupervisedSpawn",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Measuring and fault injection (targets, not products)
        .target(
            name: "ChaosKit",
            dependencies: [
                "Redlock", "RedisWire", "LocalRedis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "locklock-chaos",
            dependencies: ["ChaosKit", "RedisWire", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "redlock-bench",
            dependencies: [
                "Redlock", "RedisWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Tests
        // The trait that runs real-server tests one at a time (imports Testing, so it is test-only).
        .target(name: "RealServerGate", path: "Tests/RealServerGate", swiftSettings: strictSwift),
        // HTTP helpers for tests that talk to a server on a loopback port.
        .target(
            name: "RedlockTestSupport",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            swiftSettings: strictSwift
        ),
        .testTarget(name: "RealServerGateTests", dependencies: ["RealServerGate"], swiftSettings: strictSwift),
        .testTarget(
            name: "RedisWireTests",
            dependencies: [
                "RedisWire", "LocalRedis", "RealServerGate",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "RedlockTests",
            dependencies: [
                "Redlock", "RedisWire", "LocalRedis", "RealServerGate", "ChaosKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "LocklockServerTests",
            dependencies: [
                "LocklockServer", "Redlock", "RedisWire", "LocalRedis", "RedlockTestSupport", "RealServerGate", "ProblemDetails",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "HummingbirdIdempotencyTests",
            dependencies: [
                "HummingbirdIdempotency", "Redlock", "LocalRedis", "RedlockTestSupport", "RealServerGate",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "LocklockCLITests",
            // locklock: the tests run the built executable.
            dependencies: ["locklock", "Redlock", "RedisWire", "LocalRedis", "RedlockTestSupport", "RealServerGate", "ChaosKit"],
            swiftSettings: strictSwift
        ),
        .testTarget(name: "ChaosKitTests", dependencies: ["ChaosKit"], swiftSettings: strictSwift),
    ]
)
