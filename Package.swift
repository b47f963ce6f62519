// swift-tools-version:6.2
import PackageDescription

let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "locklock",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RedisWire", targets: ["RedisWire"]),
        .library(name: "Redlock", targets: ["Redlock"]),
        .library(name: "RedlockTestSupport", targets: ["RedlockTestSupport"]),
        .library(name: "LocklockServer", targets: ["LocklockServer"]),
        .library(name: "HummingbirdIdempotency", targets: ["HummingbirdIdempotency"]),
        .executable(name: "locklock", targets: ["locklock"]),
        .executable(name: "redlock-bench", targets: ["redlock-bench"]),
        .executable(name: "exactly-once-demo", targets: ["exactly-once-demo"]),
        .executable(name: "locklock-chaos", targets: ["locklock-chaos"]),
        .executable(name: "url-shortener", targets: ["url-shortener"]),
        .executable(name: "fire-parallel-requests", targets: ["fire-parallel-requests"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "RedisWire",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
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
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "RedlockTestSupport",
            dependencies: [
                "RedisWire",
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "LocklockServer",
            dependencies: [
                "Redlock",
                "RedisWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "HummingbirdIdempotency",
            dependencies: [
                "Redlock",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "locklock",
            dependencies: [
                "LocklockServer",
                "Redlock",
                "RedisWire",
                "RedlockTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "ChaosKit",
            dependencies: [
                "Redlock", "RedisWire", "RedlockTestSupport",
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
                "RedisWire",
                "Redlock",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        // Examples: runnable, tested uses of the library.
        .target(
            name: "ExactlyOnce",
            dependencies: ["Redlock", "RedisWire"],
            path: "Examples/ExactlyOnce/Sources/ExactlyOnce",
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "exactly-once-demo",
            dependencies: ["ExactlyOnce", "Redlock", "RedlockTestSupport"],
            path: "Examples/ExactlyOnce/Sources/exactly-once-demo",
            swiftSettings: strictSwift
        ),
        // Test-only: the trait that runs real-server tests one at a time (imports Testing).
        .target(
            name: "RealServerGate",
            path: "Tests/RealServerGate",
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "ExactlyOnceTests",
            dependencies: ["ExactlyOnce", "Redlock", "RedisWire", "RedlockTestSupport", "RealServerGate"],
            path: "Examples/ExactlyOnce/Tests/ExactlyOnceTests",
            swiftSettings: strictSwift
        ),
        .target(
            name: "URLShortener",
            dependencies: [
                "Redlock", "HummingbirdIdempotency",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/URLShortener/Sources/URLShortener",
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "url-shortener",
            dependencies: [
                "URLShortener", "Redlock", "RedisWire", "RedlockTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/URLShortener/Sources/url-shortener",
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "fire-parallel-requests",
            dependencies: ["URLShortener", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/URLShortener/Sources/fire-parallel-requests",
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "URLShortenerTests",
            dependencies: [
                "URLShortener", "HummingbirdIdempotency", "Redlock", "RedisWire", "RedlockTestSupport", "RealServerGate",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/URLShortener/Tests/URLShortenerTests",
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "ChaosKitTests",
            dependencies: ["ChaosKit"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "RedisWireTests",
            dependencies: ["RedisWire", "RedlockTestSupport", "RealServerGate", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "RedlockTests",
            dependencies: [
                "Redlock", "RedisWire", "RedlockTestSupport", "RealServerGate",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "LocklockServerTests",
            dependencies: [
                "LocklockServer", "Redlock", "RedisWire", "RedlockTestSupport", "RealServerGate",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strictSwift
        ),
    ]
)
